"""Slim events end to end (issue 18, item 7): a real ``escalations api`` and
``escalations worker`` on PostgreSQL and a private redis-server. A handoff with a
200 KB transcript (1 MB with its tried steps and notes) is created and claimed:
each of its events is under 8 KB on a live SSE stream, on a stream that replays
them after ``Last-Event-ID: 0``, and in the webhook bodies of both formats; the
whole handoff is one ``GET`` away."""

import json
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from redis import Redis

from shared.auth.tokens import issue_token
from shared.core.db import make_engine
from shared.core.models import Role
from shared.core.redis_client import make_redis
from testkit import log_leaks
from testkit.procs import Proc, api_env, base_url, poll, redis_url
from testkit.samples import LONG_TRANSCRIPT, long_handoff_body
from testkit.webhook_receiver import Receiver
from testkit.workers import start_worker
from tests.conftest import TEST_SECRET, empty_tables
from tests.e2e.conftest import StartReplica
from tests.e2e.sse import SSEClient, SSEMessage

pytestmark = pytest.mark.slow

EVENT_BYTES_MAX = 8 * 1024
TYPES = {"handoff_created", "handoff_assessment_ready", "handoff_claimed"}
SLACK_SCHEMA = json.loads(
    (Path(__file__).parents[1] / "worker" / "slack_message.schema.json").read_text()
)


def bearer(role: Role, sub: str) -> str:
    return issue_token(
        secret=TEST_SECRET, sub=sub, name=sub.title(), role=role, org="acme",
        ttl=timedelta(hours=1),
    )  # fmt: skip


ADMIN, ENGINEER, SENIOR = (
    bearer(Role.admin, "admin-1"),
    bearer(Role.engineer, "junior-1"),
    bearer(Role.senior, "senior-1"),
)


@pytest.fixture
def api(
    postgres_url: str, private_redis: Proc, start_replica: StartReplica, process_logs: Path
) -> Iterator[str]:
    """An API and a worker; yields the API's base URL."""
    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    env = api_env(
        database_url=postgres_url,
        redis_url=redis_url(private_redis.port),
        jwt_secret=TEST_SECRET,
        webhook_allow_private_networks="true",
        max_body_bytes=str(2 * 2**20),  # a create with every long field at its limit
    )
    replica = start_replica(env)
    client: Redis = make_redis(redis_url(private_redis.port))
    worker = start_worker("worker-slim", env=env, log_dir=process_logs, redis=client)
    client.close()
    try:
        yield base_url(replica.port)
    finally:
        worker.stop()


def call(api: str, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{api}/api/v1{path}", headers=headers, timeout=10, **kwargs)


def subscribe(api: str, url: str, format_: str) -> None:
    url = f"{url}?token={log_leaks.register_secret('hook-' + secrets.token_hex(12))}"
    response = call(api, "POST", "/webhooks", ADMIN, json={"url": url, "format": format_})
    assert response.status_code == 201, response.text
    log_leaks.register_secret(response.json()["secret"])


def all_events(client: SSEClient) -> bool:
    return {message.event for message in client.events()} >= TYPES


def test_events_of_a_handoff_with_a_200_kb_transcript_are_under_8_kb(api: str) -> None:
    port = int(api.rsplit(":", 1)[1])
    with Receiver() as standard, Receiver() as slack, SSEClient(port, token=SENIOR) as live:
        subscribe(api, standard.url(), "standard")
        subscribe(api, slack.url(), "slack")
        live.wait_ready()
        created = call(api, "POST", "/handoffs", ENGINEER, json=long_handoff_body())
        assert created.status_code == 201, created.text
        handoff_id = created.json()["id"]
        assert call(api, "POST", f"/handoffs/{handoff_id}/claim", SENIOR).status_code == 200
        live.wait_for(all_events, timeout=20, what="created, assessed and claimed")
        with SSEClient(port, token=SENIOR, last_event_id=0) as replay:
            replay.wait_for(all_events, timeout=10, what="the replayed events")
        poll(lambda: len(standard.hook_requests()) == 3, timeout=20, what="3 standard bodies")
        poll(lambda: len(slack.hook_requests()) == 3, timeout=20, what="3 Slack bodies")

    streamed: list[SSEMessage] = live.events()
    assert [m.data for m in replay.events()] == [m.data for m in streamed]  # replay: the same
    sizes = [m.size for m in streamed + replay.events()]
    bodies = [len(r.body) for r in standard.hook_requests() + slack.hook_requests()]
    print(f"bytes per event: stream {sizes}, webhook bodies {bodies}")
    assert max(sizes + bodies) < EVENT_BYTES_MAX
    for message in streamed:
        snapshot = message.data["handoff"]["snapshot"]
        assert (snapshot["transcript_message_count"], snapshot["tried_step_count"]) == (500, 200)
    received = [json.loads(r.body) for r in standard.hook_requests()]
    assert sorted(event["id"] for event in received) == [m.id for m in streamed]
    for message in (json.loads(r.body) for r in slack.hook_requests()):
        jsonschema.validate(message, SLACK_SCHEMA)

    full = call(api, "GET", f"/handoffs/{handoff_id}", SENIOR).json()
    assert full["snapshot"]["transcript"] == LONG_TRANSCRIPT
    assert full["claimed_by_id"] == "senior-1" and full["assessment_status"] == "ready"
