"""Stream sessions end on time, across real replicas: a stream whose token
expires, or whose cookie session is revoked on another replica, gets a final
``session_expired`` event and is closed; a revoked cookie is refused everywhere."""

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from shared.auth.tokens import issue_token
from shared.core.db import make_engine
from shared.core.models import Role
from testkit.procs import Proc, api_env, base_url, redis_url
from tests.conftest import TEST_SECRET, empty_tables
from tests.e2e.conftest import StartReplica
from tests.e2e.sse import SSEClient
from tests.e2e.test_events import SENIOR, create

pytestmark = pytest.mark.slow

Replicas = Callable[[int], list[Proc]]

SESSION_END_TIMEOUT = 15.0


@pytest.fixture
def replicas(postgres_url: str, private_redis: Proc, start_replica: StartReplica) -> Replicas:
    """``replicas(n)``: n API replicas over one empty PostgreSQL database and Redis."""
    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    env = api_env(
        database_url=postgres_url, redis_url=redis_url(private_redis.port), jwt_secret=TEST_SECRET
    )
    return lambda n: [start_replica(env) for _ in range(n)]


def short_token(seconds: int) -> str:
    return issue_token(
        secret=TEST_SECRET, sub="senior-acme", name="senior of acme", role=Role.senior,
        org="acme", ttl=timedelta(seconds=seconds),
    )  # fmt: skip


def stream_cookie(api: Proc, bearer: str) -> str:
    response = httpx.post(
        f"{base_url(api.port)}/api/v1/events/session",
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=5,
    )
    assert response.status_code == 204, response.text
    return response.cookies["escalations_stream"]


def revoke(api: Proc, cookie: str) -> None:
    with httpx.Client(base_url=base_url(api.port), timeout=5) as browser:
        browser.cookies.set("escalations_stream", cookie)
        assert browser.delete("/api/v1/events/session").status_code == 204


def assert_session_ended(client: SSEClient, reason: str) -> None:
    client.wait_for(
        lambda c: c.closed_by_server, timeout=SESSION_END_TIMEOUT, what="the stream's end"
    )
    last = client.messages[-1]
    assert (last.event, last.data["reason"]) == ("session_expired", reason), client.messages


def test_a_stream_ends_when_its_bearer_token_expires(replicas: Replicas) -> None:
    (api,) = replicas(1)
    with SSEClient(api.port, token=short_token(3)) as client:
        client.wait_ready()
        create(api, "sess-1")
        client.wait_for(lambda c: len(c.events()) == 1, what="the live event")
        assert_session_ended(client, "expired")
        assert client.messages[-1].id == 1  # a reconnect resumes after what it got


def test_a_cookie_stream_ends_when_the_bearer_it_came_from_expires(
    replicas: Replicas,
) -> None:
    (api,) = replicas(1)
    cookie = stream_cookie(api, short_token(3))
    with SSEClient(api.port, cookie=cookie) as client:
        client.wait_ready()
        assert_session_ended(client, "expired")


def test_revoking_on_one_replica_ends_the_stream_on_the_other(replicas: Replicas) -> None:
    one, two = replicas(2)
    cookie = stream_cookie(one, SENIOR)
    with (
        SSEClient(two.port, cookie=cookie) as revoked_one,
        SSEClient(two.port, cookie=stream_cookie(one, SENIOR)) as other_session,
    ):
        revoked_one.wait_ready(), other_session.wait_ready()
        revoke(one, cookie)
        assert_session_ended(revoked_one, "revoked")
        create(one, "sess-after")  # another session of the same user is untouched
        other_session.wait_for(lambda c: len(c.events()) == 1, what="the live event")
        assert not other_session.closed_by_server


def test_a_revoked_cookie_is_refused_on_every_replica(replicas: Replicas) -> None:
    one, two = replicas(2)
    cookie = stream_cookie(one, SENIOR)
    revoke(two, cookie)
    for api in (one, two):
        with SSEClient(api.port, cookie=cookie) as refused:
            refused.wait_for(lambda c: c.status is not None, what="a status")
            assert refused.status == 401
