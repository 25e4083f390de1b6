"""Presence across two real API replicas (one private Redis, the run's
PostgreSQL, real SSE sockets), with the rate limits off, since open streams
count for presence whether or not they are capped: a stream opened on A shows
on B within 2 s; a closed one stops counting within 5 s; a SIGKILLed replica's
streams stop counting within the slot TTL (short here: SLOT_TTL_SECONDS; 30 s
with the default settings, inside SPEC's 60 s)."""

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta

import httpx
import pytest

from shared.auth.tokens import issue_token
from shared.core.models import Role
from testkit.procs import Proc, api_env, base_url, poll, redis_url
from tests.conftest import TEST_SECRET
from tests.e2e.conftest import StartReplica
from tests.e2e.sse import SSEClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PRESENCE = "/api/v1/presence"
SLOT_TTL_SECONDS = 4
SLOT_REFRESH_SECONDS = 1
SHOWS_WITHIN_SECONDS = 2
GONE_WITHIN_SECONDS = 5
#: Polling and a busy two-core machine, on top of the TTL.
SLACK_SECONDS = 3

OpenStream = Callable[[Proc, str], SSEClient]


def token(role: str, *, sub: str, org: str) -> str:
    return issue_token(
        secret=TEST_SECRET, sub=sub, name=f"{sub} name", role=Role(role), org=org,
        ttl=timedelta(hours=1),
    )  # fmt: skip


@pytest.fixture
def open_stream() -> Iterator[OpenStream]:
    """``open_stream(replica, token)``: a ready SSE stream, closed at teardown."""
    with ExitStack() as stack:

        def start(proc: Proc, bearer: str) -> SSEClient:
            client = stack.enter_context(SSEClient(proc.port, token=bearer))
            client.wait_ready()
            return client

        yield start


def streams_by_person(proc: Proc, bearer: str) -> dict[str, int]:
    response = httpx.get(
        base_url(proc.port) + PRESENCE, headers={"Authorization": f"Bearer {bearer}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {item["id"]: item["streams"] for item in response.json()["items"]}


def test_streams_make_people_present_on_every_replica_until_closed_or_their_replica_dies(
    start_replica: StartReplica, postgres_url: str, private_redis: Proc, open_stream: OpenStream
) -> None:
    env = api_env(
        database_url=postgres_url, redis_url=redis_url(private_redis.port), jwt_secret=TEST_SECRET,
        rate_limits_enabled="false",
        stream_slot_ttl_seconds=str(SLOT_TTL_SECONDS),
        stream_slot_refresh_seconds=str(SLOT_REFRESH_SECONDS),
    )  # fmt: skip
    a, b = start_replica(env), start_replica(env)
    org = f"pres-{uuid.uuid4().hex[:8]}"
    dana, viewer = token("senior", sub="dana", org=org), token("engineer", sub="eve", org=org)
    other_org = token("admin", sub="olga", org=f"other-{org}")
    open_stream(a, viewer)  # an engineer's stream makes nobody present
    open_stream(a, other_org)

    on_a = open_stream(a, dana)
    poll(
        lambda: streams_by_person(b, viewer) == {"dana": 1},
        timeout=SHOWS_WITHIN_SECONDS, what="A's stream on B",
    )  # fmt: skip
    on_b = open_stream(b, dana)
    poll(lambda: streams_by_person(a, viewer) == {"dana": 2}, timeout=2, what="two streams on A")

    on_a.close()
    poll(
        lambda: streams_by_person(b, viewer) == {"dana": 1},
        timeout=GONE_WITHIN_SECONDS, what="the closed stream gone",
    )  # fmt: skip
    on_b.close()
    poll(
        lambda: streams_by_person(a, viewer) == {},
        timeout=GONE_WITHIN_SECONDS, what="dana gone with her last stream",
    )  # fmt: skip

    open_stream(b, dana)
    open_stream(a, dana)
    poll(lambda: streams_by_person(a, viewer) == {"dana": 2}, timeout=2, what="streams again")
    time.sleep(SLOT_REFRESH_SECONDS * 2)  # B's entries have been refreshed since they opened
    assert streams_by_person(a, viewer) == {"dana": 2}
    b.kill()
    took = poll(
        lambda: streams_by_person(a, viewer) == {"dana": 1},
        timeout=SLOT_TTL_SECONDS + SLACK_SECONDS, what="the killed replica's stream gone",
    )  # fmt: skip
    # Its entries were written at its last refresh, at most one TTL before they expire.
    assert took <= SLOT_TTL_SECONDS + SLACK_SECONDS
    assert streams_by_person(a, other_org) == {"olga": 1}  # each org sees only its own
