"""The Slack app end to end (issue 21, done-when 1 and 3): two real
``escalations api`` replicas and an ``escalations worker`` on PostgreSQL and a
private redis-server, a local stub of Slack's Web API and ``response_url``,
and interactions signed with ``slack_sdk``'s ``SignatureVerifier``.

A new handoff is posted once with Claim and Open; three linked seniors click
Claim at once (two on one replica, one on the other) while a fourth claims
over HTTP: one winner, the message updated once to "Claimed by …", every
loser told who won; resolving updates it again. Then Slack answers 429 with
``Retry-After: 2`` on ``chat.update`` and Redis is down for 10 s during a burst
of events: every message ends in its handoff's final state, and no message
ever went back to an earlier state.
"""

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from sqlalchemy import text as sql

from shared.auth.tokens import issue_token
from shared.core.db import make_engine
from shared.core.models import Role
from shared.core.redis_client import make_redis
from testkit import log_leaks
from testkit.procs import Proc, api_env, base_url, poll, redis_url, start_redis
from testkit.workers import start_worker
from tests.conftest import TEST_SECRET, empty_tables, handoff_body
from tests.e2e.conftest import StartReplica
from tests.stubs.slack_stub import SlackStub, click_payload, signed_interaction

pytestmark = pytest.mark.slow

BOT_TOKEN = log_leaks.register_secret("xoxb-5555-6666-" + "m1n2b3v4c5" * 2)
SIGNING_SECRET = log_leaks.register_secret("slack-signing-" + "beef" * 8)
WORKSPACE = "T0ACME"
CHANNEL = "C0QUEUE"
SLACK = "/api/v1/integrations/slack"
#: How long Redis stays down: the fault scenario's length, not a wait for a condition.
OUTAGE_SECONDS = 10.0
#: Slack's patience with an interaction's answer.
SLACK_ANSWER_SECONDS = 3.0
SENIORS = {"U0DANA": "Dana Senior", "U0SAM": "Sam Senior", "U0KIM": "Kim Senior"}
#: Each status's place in a handoff's life: a message's texts may only move forward.
ORDER = {"Waiting": 0, "Claimed": 1, "Resolved": 2, "Cancelled": 2}


def _headers(role: Role, sub: str, name: str | None = None) -> dict[str, str]:
    token = issue_token(
        secret=TEST_SECRET, sub=sub, name=name or sub.title(), role=role, org="acme",
        ttl=timedelta(hours=1),
    )  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


ADMIN = _headers(Role.admin, "admin-1")
ENGINEER = _headers(Role.engineer, "jo", "Jo Junior")


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    with SlackStub(BOT_TOKEN) as stub:
        yield stub


@pytest.fixture
def env(postgres_url: str, private_redis: Proc, stub: SlackStub) -> dict[str, str]:
    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    return api_env(
        database_url=postgres_url,
        redis_url=redis_url(private_redis.port),
        jwt_secret=TEST_SECRET,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=stub.api_url,
        public_url="https://esc.example.test",
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
) -> Iterator[tuple[str, str]]:
    """Two API replicas and a worker, the workspace connected and three
    seniors linked; yields the replicas' base URLs."""
    first, second = base_url(start_replica(env).port), base_url(start_replica(env).port)
    worker = start_worker("worker-slack", env=env, log_dir=process_logs, redis=redis_client)
    try:
        body = {"workspace_id": WORKSPACE, "bot_token": BOT_TOKEN, "channel": CHANNEL}
        assert httpx.put(f"{first}{SLACK}", json=body, headers=ADMIN).status_code == 200
        for slack_user, name in SENIORS.items():
            link = {"user_id": name.split()[0].lower(), "user_name": name, "role": "senior"}
            answer = httpx.put(f"{first}{SLACK}/links/{slack_user}", json=link, headers=ADMIN)
            assert answer.status_code == 200, answer.text
        yield first, second
    finally:
        worker.stop()


def create(api: str, session_id: str) -> dict[str, Any]:
    response = httpx.post(f"{api}/api/v1/handoffs", json=handoff_body(session_id), headers=ENGINEER)
    assert response.status_code == 201, response.text
    return response.json()


def handoff(api: str, handoff_id: str) -> dict[str, Any]:
    return httpx.get(f"{api}/api/v1/handoffs/{handoff_id}", headers=ADMIN).json()


def click(api: str, stub: SlackStub, user: str, handoff_id: str) -> float:
    """A signed Claim click; returns how long the endpoint took to answer 200."""
    payload = click_payload(
        workspace=WORKSPACE,
        user=user,
        action="claim",
        value=handoff_id,
        response_url=stub.response_url(user),
    )
    body, headers = signed_interaction(SIGNING_SECRET, payload, timestamp=int(time.time()))
    started = time.monotonic()
    response = httpx.post(f"{api}{SLACK}/interactions", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def message_of(stub: SlackStub, handoff_id: str) -> tuple[tuple[str, str], dict[str, Any]]:
    """The one message whose Claim/Open buttons name ``handoff_id``."""
    found = [
        (key, message)
        for key, message in stub.messages().items()
        if handoff_id in str(message["blocks"])
    ]
    assert len(found) == 1, f"{len(found)} messages for {handoff_id}"
    return found[0]


def texts_sent(stub: SlackStub, key: tuple[str, str]) -> list[str]:
    """The top-level texts Slack accepted for one message, in the order it got them."""
    channel, ts = key
    return [
        str(call.body["text"])
        for call in stub.calls
        if call.status == 200
        and call.method == "chat.update"
        and (call.body.get("channel"), call.body.get("ts")) == (channel, ts)
    ]


def button_ids(message: dict[str, Any]) -> set[str]:
    [actions] = [block for block in message["blocks"] if block["type"] == "actions"]
    return {button["action_id"] for button in actions["elements"]}


def synced(database_url: str, handoff_id: str) -> bool:
    """The handoff's message shows its current state (the row is not due)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            due = connection.execute(
                sql("SELECT due_at FROM slack_messages WHERE handoff_id = :id"), {"id": handoff_id}
            ).all()
    finally:
        engine.dispose()
    return len(due) == 1 and due[0].due_at is None


def test_claim_from_slack_races_http_and_one_wins(
    cluster: tuple[str, str], stub: SlackStub, postgres_url: str
) -> None:
    first, second = cluster
    created = create(first, "sess-slack-race")
    poll(lambda: bool(stub.calls_of("chat.postMessage")), timeout=5, what="the post")
    key, posted = message_of(stub, created["id"])
    assert button_ids(posted) == {"claim", "open"}
    poll(
        lambda: (
            handoff(first, created["id"])["assessment_status"] == "ready"
            and synced(postgres_url, created["id"])
        ),
        timeout=15,
        what="the assessment, and the message showing it",
    )  # so that the claim's is the only update from here on
    updates_before = len(
        texts_sent(stub, key)
    )  # so that the claim's is the only update from here on

    barrier = threading.Barrier(4)
    answers: dict[str, Any] = {}

    def slack(user: str, api: str) -> None:
        barrier.wait()
        answers[user] = click(api, stub, user, created["id"])

    def http() -> None:
        barrier.wait()
        lee = _headers(Role.senior, "lee", "Lee Senior")
        answers["http"] = httpx.post(f"{second}/api/v1/handoffs/{created['id']}/claim", headers=lee)

    threads = [
        threading.Thread(target=slack, args=("U0DANA", first)),
        threading.Thread(target=slack, args=("U0SAM", first)),
        threading.Thread(target=slack, args=("U0KIM", second)),
        threading.Thread(target=http),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(answers[user] < SLACK_ANSWER_SECONDS for user in SENIORS), answers
    print("interaction answered in", ", ".join(f"{answers[u] * 1000:.0f} ms" for u in SENIORS))

    poll(
        lambda: handoff(first, created["id"])["status"] == "claimed",
        timeout=10,
        what="the claim",
    )
    winner = handoff(first, created["id"])["claimed_by_name"]
    http_answer = answers["http"]
    if winner == "Lee Senior":
        assert http_answer.status_code == 200
    else:
        assert http_answer.status_code == 409
        assert http_answer.json()["claimed_by_name"] == winner
    slack_losers = [user for user, name in SENIORS.items() if name != winner]
    assert len(slack_losers) == (3 if winner == "Lee Senior" else 2)
    poll(
        lambda: all(stub.responses(user) for user in SENIORS),
        timeout=10,
        what="an ephemeral answer to every click",
    )
    for user in slack_losers:
        [answer] = stub.responses(user)
        assert answer["response_type"] == "ephemeral"
        assert answer["text"].startswith(f"Already claimed by {winner} "), answer
    poll(
        lambda: message_of(stub, created["id"])[1]["text"].startswith(f"Claimed by {winner}"),
        timeout=10,
        what="the message updated to the claim",
    )
    assert "claim" not in button_ids(message_of(stub, created["id"])[1])

    claimer = _headers(Role.senior, handoff(first, created["id"])["claimed_by_id"], winner)
    resolved = httpx.post(
        f"{second}/api/v1/handoffs/{created['id']}/resolve",
        json={"resolution_notes": "Raised the memory limit."},
        headers=claimer,
    )
    assert resolved.status_code == 200, resolved.text
    poll(
        lambda: message_of(stub, created["id"])[1]["text"].startswith(f"Resolved by {winner}"),
        timeout=10,
        what="the message updated to the resolution",
    )
    sent = texts_sent(stub, key)[updates_before:]
    assert [text.split(":")[0] for text in sent] == [
        f"Claimed by {winner}",
        f"Resolved by {winner}",
    ]
    assert len(stub.calls_of("chat.postMessage")) == 1


def test_429_and_a_redis_outage_delay_and_lose_nothing(
    cluster: tuple[str, str], stub: SlackStub, private_redis: Proc, process_logs: Path
) -> None:
    first, second = cluster
    created = [create(first if n % 2 else second, f"sess-burst-{n}") for n in range(4)]
    poll(
        lambda: len(stub.calls_of("chat.postMessage")) == 4,
        timeout=10,
        what="every handoff posted",
    )
    stub.fail_next("chat.update", 429, retry_after=2, times=3)
    dana = _headers(Role.senior, "dana", "Dana Senior")
    private_redis.stop()
    restarted: Proc | None = None
    try:
        outage_started = time.monotonic()
        for n, item in enumerate(created):  # a burst of events while Redis is down
            api = first if n % 2 else second
            url = f"{api}/api/v1/handoffs/{item['id']}"
            if n == 3:
                assert httpx.post(f"{url}/cancel", headers=ENGINEER).status_code == 200
                continue
            assert httpx.post(f"{url}/claim", headers=dana).status_code == 200
            if n < 2:
                notes = {"resolution_notes": "done"}
                assert httpx.post(f"{url}/resolve", json=notes, headers=dana).status_code == 200
        # The rest of the outage's length (a fault scenario, not a wait for a condition).
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_started)))
        restarted = start_redis(private_redis.port, log_dir=process_logs)  # empty
        expected = {
            created[0]["id"]: "Resolved by Dana Senior",
            created[1]["id"]: "Resolved by Dana Senior",
            created[2]["id"]: "Claimed by Dana Senior",
            created[3]["id"]: "Cancelled",
        }

        def final() -> bool:
            return all(
                message_of(stub, handoff_id)[1]["text"].startswith(text)
                for handoff_id, text in expected.items()
            )

        took = poll(final, timeout=60, what="every message in its handoff's final state")
        print(f"Redis back → every message final in {took:.1f} s")
    finally:
        if restarted is not None:
            restarted.stop()
    assert sum(call.status == 429 for call in stub.calls_of("chat.update")) == 3
    for handoff_id in expected:
        key, _ = message_of(stub, handoff_id)
        places = [ORDER[text.split()[0].rstrip(":")] for text in texts_sent(stub, key)]
        assert places == sorted(places), (handoff_id, texts_sent(stub, key))
    assert len(stub.calls_of("chat.postMessage")) == 4
