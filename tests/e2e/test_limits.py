"""Abuse limits across two real API replicas: one private Redis, one PostgreSQL
database, real HTTP. Each limit is counted across both replicas (requests split
over A and B, the next refused on either) and answers 429 ``rate_limited`` with
a ``Retry-After`` header; refused requests change nothing; /healthz and /readyz
are never limited. The window logic itself: tests/shared/test_ratelimit.py."""

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from shared.auth.tokens import issue_token
from shared.core.db import make_engine
from shared.core.models import Role
from testkit.procs import POLL_SECONDS, Proc, api_env, base_url, redis_url
from testkit.samples import fresh_handoff_body
from tests.conftest import TEST_SECRET
from tests.e2e.conftest import StartReplica
from tests.e2e.sse import SSEClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

HANDOFFS = "/api/v1/handoffs"
EVENTS = "/api/v1/events"
TIMEOUT = 10.0
#: Streams of a killed replica stop counting at most this long after its last refresh.
SLOT_TTL_SECONDS = 6
SLOT_REFRESH_SECONDS = 1


def start_pair(start_replica: StartReplica, postgres_url: str, redis: Proc, **limits: str):
    env = api_env(
        database_url=postgres_url, redis_url=redis_url(redis.port), jwt_secret=TEST_SECRET, **limits
    )
    return start_replica(env), start_replica(env)


def token(role: str, *, sub: str, org: str) -> str:
    return issue_token(
        secret=TEST_SECRET, sub=sub, name=sub.title(), role=Role(role), org=org,
        ttl=timedelta(hours=1),
    )  # fmt: skip


def bearer(role: str, *, sub: str, org: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, sub=sub, org=org)}"}


def url(proc: Proc, path: str) -> str:
    return base_url(proc.port) + path


def assert_limited(response: httpx.Response, limit: str) -> int:
    """A 429 as the API promises it; returns its Retry-After."""
    assert response.status_code == 429, response.text
    body = response.json()
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    assert body["error"] == "rate_limited"
    assert body["limit"] == limit
    assert body["retry_after"] == retry_after
    assert body["detail"]
    return retry_after


def assert_health_never_limited(replicas: tuple[Proc, Proc]) -> None:
    for proc in replicas:
        for path in ("/healthz", "/readyz"):
            for _ in range(5):
                assert httpx.get(url(proc, path), timeout=TIMEOUT).status_code == 200


def poll_until(check: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Seconds it took ``check`` to become true (fails after ``timeout``)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"no {what} within {timeout} s"
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def org_handoffs(proc: Proc, org: str) -> list[dict]:
    response = httpx.get(
        url(proc, HANDOFFS), headers=bearer("admin", sub="auditor", org=org), timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


# --- creates and claims ----------------------------------------------------------------


def test_creates_and_claims_are_limited_per_user_across_replicas(
    start_replica: StartReplica, postgres_url: str, private_redis: Proc
) -> None:
    a, b = start_pair(
        start_replica, postgres_url, private_redis,
        rate_limit_creates="4/minute", rate_limit_claims="3/minute",
    )  # fmt: skip
    org = f"lim-{uuid.uuid4().hex[:8]}"
    engineer = bearer("engineer", sub="eng-1", org=org)

    created = [
        httpx.post(url(proc, HANDOFFS), json=fresh_handoff_body(), headers=engineer)
        for proc in (a, b, a, b)
    ]
    assert [r.status_code for r in created] == [201] * 4
    for proc in (a, b):  # the fifth and sixth, on either replica
        retry_after = assert_limited(
            httpx.post(url(proc, HANDOFFS), json=fresh_handoff_body(), headers=engineer), "creates"
        )
        assert retry_after <= 60
    assert len(org_handoffs(a, org)) == 4  # the refused creates made nothing
    assert handoffs_in_database(postgres_url, org) == 4
    other = bearer("engineer", sub="eng-2", org=org)  # another user has a window of their own
    created.append(httpx.post(url(b, HANDOFFS), json=fresh_handoff_body(), headers=other))
    assert created[-1].status_code == 201

    senior = bearer("senior", sub="sen-1", org=org)
    ids = [response.json()["id"] for response in created]
    claims = [
        httpx.post(url(proc, f"{HANDOFFS}/{handoff_id}/claim"), headers=senior)
        for proc, handoff_id in zip((a, b, a), ids[:3], strict=True)
    ]
    assert [r.status_code for r in claims] == [200] * 3
    for proc in (b, a):
        assert_limited(
            httpx.post(url(proc, f"{HANDOFFS}/{ids[3]}/claim"), headers=senior), "claims"
        )
    unclaimed = httpx.get(url(a, f"{HANDOFFS}/{ids[3]}"), headers=senior).json()
    assert (unclaimed["status"], unclaimed["claimed_by_id"]) == ("pending", None)
    history = httpx.get(url(b, f"{HANDOFFS}/{ids[3]}/history"), headers=senior).json()["items"]
    assert [event["type"] for event in history] == ["handoff_created"]
    other_senior = bearer("senior", sub="sen-2", org=org)
    assert httpx.post(url(b, f"{HANDOFFS}/{ids[3]}/claim"), headers=other_senior).status_code == 200

    assert_health_never_limited((a, b))


# --- failed authentications ------------------------------------------------------------


def test_failed_authentications_block_the_address_until_the_window_passes(
    start_replica: StartReplica, postgres_url: str, private_redis: Proc
) -> None:
    a, b = start_pair(
        start_replica, postgres_url, private_redis, rate_limit_auth_failures="5/2 seconds"
    )
    org = f"lim-{uuid.uuid4().hex[:8]}"
    valid = bearer("senior", sub="sen-1", org=org)
    forged = {"Authorization": "Bearer " + token("senior", sub="sen-1", org=org)[:-4] + "AAAA"}
    bad_cookie = {"Cookie": "escalations_stream=not-a-token"}
    missing = httpx.get(url(a, HANDOFFS))  # no credentials: refused, but not counted
    assert missing.status_code == 401

    failures = [
        httpx.get(url(a, HANDOFFS), headers=forged),
        httpx.get(url(b, EVENTS), headers=bad_cookie),
        httpx.post(url(a, HANDOFFS), json=fresh_handoff_body(), headers=forged),
        httpx.get(url(b, HANDOFFS), headers=forged),
        httpx.get(url(a, EVENTS), headers=forged),
    ]
    assert [r.status_code for r in failures] == [401] * 5
    # Past the limit: even a valid token from this address is refused, on either replica.
    assert_limited(httpx.get(url(b, HANDOFFS), headers=valid), "auth_failures")
    assert_limited(
        httpx.post(url(a, HANDOFFS), json=fresh_handoff_body(), headers=valid), "auth_failures"
    )
    assert_limited(httpx.get(url(a, EVENTS), headers=valid), "auth_failures")
    assert handoffs_in_database(postgres_url, org) == 0  # the refused create made nothing
    assert_health_never_limited((a, b))

    waited = poll_until(
        lambda: httpx.get(url(b, HANDOFFS), headers=valid).status_code == 200,
        timeout=10,
        what="valid token accepted again",
    )
    assert waited <= 2 + 1.5  # the window is 2 s (margin: one slow poll on a busy machine)
    assert httpx.get(url(a, HANDOFFS), headers=valid).status_code == 200


def handoffs_in_database(postgres_url: str, org: str) -> int:
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM handoffs WHERE org_id = :org")
            return int(connection.execute(query, {"org": org}).scalar_one())
    finally:
        engine.dispose()


# --- streams ---------------------------------------------------------------------------


@pytest.fixture
def streams() -> Iterator[Callable[[Proc, str], SSEClient]]:
    """``open(proc, token)`` → a started SSE client; all are closed at teardown."""
    with ExitStack() as stack:

        def open_stream(proc: Proc, bearer_token: str) -> SSEClient:
            return stack.enter_context(SSEClient(proc.port, token=bearer_token))

        yield open_stream


def test_stream_opens_are_limited_per_user_across_replicas(
    start_replica: StartReplica, postgres_url: str, private_redis: Proc, streams
) -> None:
    a, b = start_pair(
        start_replica, postgres_url, private_redis, rate_limit_stream_opens="4/minute"
    )
    org = f"lim-{uuid.uuid4().hex[:8]}"
    user = token("engineer", sub="eng-1", org=org)
    for proc in (a, b, a, b):
        client = streams(proc, user)
        client.wait_ready()
        client.close()
    for proc in (a, b):
        response = httpx.get(url(proc, EVENTS), headers={"Authorization": f"Bearer {user}"})
        assert_limited(response, "stream_opens")
    streams(b, token("engineer", sub="eng-2", org=org)).wait_ready()  # another user may
    assert_health_never_limited((a, b))


def test_concurrent_streams_are_capped_per_user_and_a_dead_replicas_slots_free(
    start_replica: StartReplica, postgres_url: str, private_redis: Proc, streams
) -> None:
    a, b = start_pair(
        start_replica, postgres_url, private_redis,
        max_streams_per_user="4",
        stream_slot_ttl_seconds=str(SLOT_TTL_SECONDS),
        stream_slot_refresh_seconds=str(SLOT_REFRESH_SECONDS),
    )  # fmt: skip
    org = f"lim-{uuid.uuid4().hex[:8]}"
    user = token("senior", sub="sen-1", org=org)
    headers = {"Authorization": f"Bearer {user}"}
    opened = [streams(proc, user) for proc in (a, b, a, b)]
    for client in opened:
        client.wait_ready()
    for proc in (a, b):
        retry_after = assert_limited(
            httpx.get(url(proc, EVENTS), headers=headers), "concurrent_streams"
        )
        assert retry_after <= SLOT_REFRESH_SECONDS + 1
    streams(a, token("senior", sub="sen-2", org=org)).wait_ready()  # another user may

    opened[0].close()  # a stream on A ends: its slot is free at once, for either replica
    poll_until(
        lambda: try_stream(streams, b, user),
        timeout=TIMEOUT,
        what="a slot freed by the closed stream",
    )
    # Held now: one on A, three on B (one of them the new one). Kill B: its three
    # entries are no longer refreshed and stop counting within the TTL.
    b.kill()
    killed_at = time.monotonic()
    held: list[bool] = []
    poll_until(
        lambda: (try_stream(streams, a, user) and held.append(True)) or len(held) == 3,
        timeout=SLOT_TTL_SECONDS + TIMEOUT,
        what="the killed replica's three slots freed",
    )
    # The TTL, plus a refresh interval and polling on a busy machine.
    assert time.monotonic() - killed_at <= SLOT_TTL_SECONDS + SLOT_REFRESH_SECONDS + 4
    assert_limited(httpx.get(url(a, EVENTS), headers=headers), "concurrent_streams")
    for path in ("/healthz", "/readyz"):
        assert httpx.get(url(a, path), timeout=TIMEOUT).status_code == 200


def try_stream(streams, proc: Proc, bearer_token: str) -> bool:
    """Opens a stream that stays open when admitted (True); False on a 429."""
    client = streams(proc, bearer_token)
    client.wait_for(lambda c: c.status is not None, what="a status line")
    if client.status == 429:  # concurrent_streams: the opens limit is generous here
        client.close()
        return False
    assert client.status == 200
    client.wait_ready()
    return True
