"""Webhooks end to end (issue 11, done-when 1): a real ``escalations api`` and
``escalations worker`` on PostgreSQL and a private redis-server, sending to
local HTTP receivers.

One create fans out to three subscriptions: one receiver answers at once
(delivered within 2 s, its signature verified with our own HMAC code and with
the ``standardwebhooks`` package), one answers 500 twice then 200 (three tries,
one ``webhook-id``, a delivered log entry), one answers 410 (the subscription
is disabled). Then a receiver that is down during a Redis outage still gets
every event created meanwhile.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks
from redis import Redis

from shared.auth.tokens import issue_token
from shared.core.db import make_engine
from shared.core.models import Role
from shared.core.redis_client import make_redis
from testkit import log_leaks
from testkit.procs import Proc, api_env, base_url, free_port, poll, redis_url, start_redis
from testkit.webhook_receiver import Receiver
from testkit.workers import start_worker
from tests.conftest import TEST_SECRET, empty_tables, handoff_body
from tests.e2e.conftest import StartReplica

pytestmark = pytest.mark.slow

INTERVALS = "[0.2, 0.3, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]"
#: How long Redis stays down: a fault scenario's length, not a wait for a condition.
OUTAGE_SECONDS = 2.0


def _headers(role: Role, sub: str) -> dict[str, str]:
    token = issue_token(
        secret=TEST_SECRET, sub=sub, name=sub.title(), role=role, org="acme",
        ttl=timedelta(hours=1),
    )  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


ADMIN = _headers(Role.admin, "admin-1")
ENGINEER = _headers(Role.engineer, "junior-1")


@pytest.fixture
def env(postgres_url: str, private_redis: Proc) -> dict[str, str]:
    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    return api_env(
        database_url=postgres_url,
        redis_url=redis_url(private_redis.port),
        jwt_secret=TEST_SECRET,
        webhook_allow_private_networks="true",
        webhook_retry_intervals_seconds=INTERVALS,
        webhook_timeout_seconds="2",
        maintenance_interval_seconds="0.5",
    )


@pytest.fixture
def redis_client(private_redis: Proc) -> Iterator[Redis]:
    client = make_redis(redis_url(private_redis.port))
    yield client
    client.close()


@pytest.fixture
def cluster(
    env: dict[str, str], start_replica: StartReplica, process_logs: Path, redis_client: Redis
) -> Iterator[str]:
    """An API and a worker; yields the API's base URL."""
    api = start_replica(env)
    worker = start_worker("worker-webhooks", env=env, log_dir=process_logs, redis=redis_client)
    try:
        yield base_url(api.port)
    finally:
        worker.stop()


def subscribe(api: str, url: str) -> dict[str, Any]:
    """A subscription whose secret and URL (a Slack URL is a credential) the
    processes' logs are then checked for (testkit/log_leaks.py)."""
    url = f"{url}?token={log_leaks.register_secret('hook-' + secrets.token_hex(12))}"
    body = {"url": url, "events": ["handoff_created"]}
    response = httpx.post(f"{api}/api/v1/webhooks", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    log_leaks.register_secret(response.json()["secret"])
    return response.json()


def log(api: str, webhook_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{api}/api/v1/webhooks/{webhook_id}/deliveries", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def create(api: str, session_id: str) -> dict[str, Any]:
    response = httpx.post(f"{api}/api/v1/handoffs", json=handoff_body(session_id), headers=ENGINEER)
    assert response.status_code == 201, response.text
    return response.json()


def own_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_one_create_is_delivered_signed_retried_and_a_410_disables(cluster: str) -> None:
    with Receiver() as quick, Receiver([500, 500, 200]) as flaky, Receiver([410]) as gone:
        hooks = {name: subscribe(cluster, r.url()) for name, r in
                 (("quick", quick), ("flaky", flaky), ("gone", gone))}  # fmt: skip
        started = time.monotonic()
        handoff = create(cluster, "sess-webhooks")
        took = poll(lambda: bool(quick.hook_requests()), timeout=2.0, what="a delivery in 2 s")
        print(f"create → delivered in {took * 1000:.0f} ms")

        [request] = quick.hook_requests()
        secret = hooks["quick"]["secret"]
        assert request.headers["webhook-signature"] == own_signature(
            secret, request.headers, request.body
        )
        event = standardwebhooks.Webhook(secret).verify(request.body, request.headers)
        assert (event["type"], event["handoff"]["id"]) == ("handoff_created", handoff["id"])
        assert request.at - started < 2.0

        poll(lambda: len(flaky.hook_requests()) == 3, timeout=10, what="three tries")
        poll(
            lambda: log(cluster, hooks["flaky"]["id"])[0]["status"] == "delivered",
            timeout=5,
            what="a delivered log entry",
        )
        tries = flaky.hook_requests()
        assert len({r.headers["webhook-id"] for r in tries}) == 1
        [entry] = log(cluster, hooks["flaky"]["id"])
        assert (entry["attempts"], entry["last_status_code"], entry["id"]) == (
            3,
            200,
            tries[0].headers["webhook-id"],
        )

        def disabled() -> bool:
            shown = httpx.get(f"{cluster}/api/v1/webhooks/{hooks['gone']['id']}", headers=ADMIN)
            return shown.json()["enabled"] is False

        poll(disabled, timeout=5, what="the 410 receiver's subscription disabled")
        assert log(cluster, hooks["gone"]["id"])[0]["status"] == "failed"
        create(cluster, "sess-after-410")
        poll(lambda: len(quick.hook_requests()) == 2, timeout=2, what="the next delivery")
        assert len(gone.hook_requests()) == 1
        assert len(log(cluster, hooks["gone"]["id"])) == 1


def test_a_receiver_down_during_a_redis_outage_gets_every_event(
    cluster: str, private_redis: Proc, process_logs: Path
) -> None:
    port = free_port()
    webhook = subscribe(cluster, f"http://127.0.0.1:{port}/hook")
    private_redis.stop()
    restarted: Proc | None = None
    try:
        handoffs = [create(cluster, f"sess-outage-{n}") for n in range(3)]
        time.sleep(OUTAGE_SECONDS)  # the outage's length, not a wait for a condition
        restarted = start_redis(private_redis.port, log_dir=process_logs)  # empty
        poll(
            lambda: all(entry["attempts"] >= 1 for entry in log(cluster, webhook["id"])),
            timeout=15,
            what="a failed try of each delivery (the receiver is down)",
        )
        with Receiver(port=port) as receiver:
            poll(
                lambda: len(receiver.hook_requests()) == 3,
                timeout=15,
                what="every event at the receiver",
            )
            poll(
                lambda: all(e["status"] == "delivered" for e in log(cluster, webhook["id"])),
                timeout=5,
                what="every delivery delivered",
            )
        received = {json.loads(r.body)["handoff_id"] for r in receiver.hook_requests()}
        assert received == {handoff["id"] for handoff in handoffs}
    finally:
        if restarted is not None:
            restarted.stop()
