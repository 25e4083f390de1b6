"""Live events across real processes: two ``escalations api`` replicas and a
worker over a private redis-server and PostgreSQL, read by real SSE clients."""

import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from redis import Redis

from shared.auth.tokens import issue_token
from shared.core.models import Role
from shared.core.redis_client import make_redis
from testkit.procs import Proc, api_env, base_url
from testkit.workers import start_worker
from tests.conftest import TEST_SECRET, handoff_body
from tests.e2e.conftest import Backend, StartReplica
from tests.e2e.sse import SSEClient

pytestmark = pytest.mark.slow


def token(role: Role, *, org: str = "acme", sub: str | None = None) -> str:
    return issue_token(
        secret=TEST_SECRET, sub=sub or f"{role.value}-{org}", name=f"{role.value} of {org}",
        role=role, org=org, ttl=timedelta(hours=1),
    )  # fmt: skip


JUNIOR, SENIOR = token(Role.engineer), token(Role.senior)


def call(api: Proc, method: str, path: str, bearer: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.request(
        method, f"{base_url(api.port)}/api/v1{path}",
        headers={"Authorization": f"Bearer {bearer}"}, timeout=10, **kwargs,
    )  # fmt: skip


def create(api: Proc, session_id: str, *, bearer: str = JUNIOR) -> str:
    response = call(api, "POST", "/handoffs", bearer, json=handoff_body(session_id))
    assert response.status_code == 201, response.text
    return response.json()["id"]


@dataclass
class Stack:
    replicas: list[Proc]
    backend: Backend
    worker: Proc | None


@pytest.fixture
def empty_backend(postgres_url: str, backend: Backend) -> Backend:
    from shared.core.db import make_engine
    from tests.conftest import empty_tables

    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    return backend


@pytest.fixture
def make_stack(
    empty_backend: Backend, start_replica: StartReplica, process_logs: Path
) -> Iterator[Callable[..., Stack]]:
    workers: list[Proc] = []

    def make(*, replicas: int = 2, with_worker: bool = False, **settings: str) -> Stack:
        env = api_env(
            database_url=empty_backend.database_url, redis_url=empty_backend.redis_url,
            jwt_secret=TEST_SECRET, **settings,
        )  # fmt: skip
        worker = None
        if with_worker:
            client: Redis = make_redis(empty_backend.redis_url)
            worker = start_worker("worker-1", env=env, log_dir=process_logs, redis=client)
            client.close()
            workers.append(worker)
        return Stack([start_replica(env) for _ in range(replicas)], empty_backend, worker)

    yield make
    for worker in workers:
        worker.stop()


def seqs(client: SSEClient) -> list[int]:
    return [message.id for message in client.events()]  # type: ignore[misc]


def test_events_from_either_replica_and_the_worker_reach_every_client_once(make_stack) -> None:
    stack = make_stack(with_worker=True)
    one, two = stack.replicas
    with (
        SSEClient(one.port, token=SENIOR) as on_one,
        SSEClient(two.port, token=SENIOR) as on_two,
        SSEClient(two.port, token=token(Role.senior, org="other")) as other_org,
    ):
        for client in (on_one, on_two, other_org):
            client.wait_ready()
        handoff_id = create(one, "sess-1")  # handoff_created, on replica one
        assert call(two, "POST", f"/handoffs/{handoff_id}/claim", SENIOR).status_code == 200
        assert call(one, "POST", f"/handoffs/{handoff_id}/release", SENIOR).status_code == 200
        expected = {"handoff_created", "handoff_claimed", "handoff_released",
                    "handoff_assessment_ready"}  # fmt: skip
        for client in (on_one, on_two):
            client.wait_for(lambda c: {m.event for m in c.events()} >= expected, what="4 events")
        create(two, "sess-other", bearer=token(Role.engineer, org="other"))
        # The worker assesses this one too: waiting for exactly one event raced the assessment.
        other_expected = {"handoff_created", "handoff_assessment_ready"}
        other_org.wait_for(
            lambda c: {m.event for m in c.events()} >= other_expected, what="the other org's events"
        )

        for client in (on_one, on_two):
            assert sorted(m.event for m in client.events()) == sorted(expected)
            assert seqs(client) == [1, 2, 3, 4]  # each exactly once, in order
            assert all(m.data["org_id"] == "acme" for m in client.events())
        assert sorted(m.event for m in other_org.events()) == sorted(other_expected)
        assert [m.data["org_id"] for m in other_org.events()] == ["other", "other"]


def test_reconnect_to_the_other_replica_replays_exactly_what_was_missed(make_stack) -> None:
    one, two = make_stack().replicas
    with SSEClient(one.port, token=SENIOR) as first:
        first.wait_ready()
        handoff_id = create(one, "sess-1")
        first.wait_for(lambda c: len(c.events()) == 1)
    last_seen = seqs(first)[-1]

    call(one, "POST", f"/handoffs/{handoff_id}/claim", SENIOR)
    call(two, "POST", f"/handoffs/{handoff_id}/release", SENIOR)
    create(one, "sess-2")
    with SSEClient(two.port, token=SENIOR, last_event_id=last_seen) as resumed:
        resumed.wait_ready()
        assert [m.event for m in resumed.events()] == [
            "handoff_claimed", "handoff_released", "handoff_created",
        ]  # fmt: skip
        assert seqs(resumed) == [2, 3, 4]
        create(two, "sess-3")
        resumed.wait_for(lambda c: len(c.events()) == 4, what="the live event")
        assert seqs(resumed) == [2, 3, 4, 5]
        assert resumed.messages[3].event == "ready"  # replay, then ready, then live


def test_an_id_older_than_the_retention_gets_reset(make_stack) -> None:
    (api,) = make_stack(replicas=1, event_replay_limit="2").replicas
    for n in range(5):
        create(api, f"sess-{n}")
    with SSEClient(api.port, token=SENIOR, last_event_id=1) as stale:
        stale.wait_ready()
        assert [m.event for m in stale.messages[:2]] == ["reset", "ready"]
        assert stale.messages[0].id == 5 and stale.events() == []
    with SSEClient(api.port, token=SENIOR, last_event_id=3) as recent:
        recent.wait_ready()
        assert seqs(recent) == [4, 5]
    with SSEClient(api.port, token=SENIOR, last_event_id=99) as future:
        future.wait_ready()
        assert future.messages[0].event == "reset"


def test_redis_restart_under_connected_streams_loses_nothing(make_stack) -> None:
    stack = make_stack()
    one, two = stack.replicas
    with SSEClient(one.port, token=SENIOR) as on_one, SSEClient(two.port, token=SENIOR) as on_two:
        on_one.wait_ready(), on_two.wait_ready()
        create(one, "sess-before")
        on_two.wait_for(lambda c: len(c.events()) == 1)

        stack.backend.redis.kill()
        created_while_down = [create(one, "sess-down-1"), create(two, "sess-down-2")]
        stack.backend.restart_redis()  # empty; stopped by the fixture
        for client in (on_one, on_two):
            client.wait_for(lambda c: len(c.events()) == 3, timeout=30, what="backlog")
        create(two, "sess-after")
        for client in (on_one, on_two):
            client.wait_for(lambda c: len(c.events()) == 4, timeout=10, what="live event")
            assert seqs(client) == [1, 2, 3, 4]
            assert {m.data["handoff_id"] for m in client.events()} >= set(created_while_down)
        with SSEClient(two.port, token=SENIOR, last_event_id=1) as reconnecting:
            reconnecting.wait_ready()
            assert seqs(reconnecting) == [2, 3, 4]


def test_stream_needs_a_valid_token(make_stack) -> None:
    (api,) = make_stack(replicas=1).replicas
    response = httpx.get(f"{base_url(api.port)}/api/v1/events", timeout=5)
    assert (response.status_code, response.json()["error"]) == (401, "not_authenticated")
    bad_id = httpx.get(
        f"{base_url(api.port)}/api/v1/events",
        headers={"Authorization": f"Bearer {SENIOR}", "Last-Event-ID": "abc"},
        timeout=5,
    )
    assert (bad_id.status_code, bad_id.json()["error"]) == (422, "invalid_last_event_id")


def test_browser_cookie_opens_the_stream_without_a_token_in_the_url(make_stack) -> None:
    (api,) = make_stack(replicas=1).replicas
    with httpx.Client(base_url=base_url(api.port), timeout=5) as browser:
        opened = browser.post(
            "/api/v1/events/session", headers={"Authorization": f"Bearer {SENIOR}"}
        )
        assert opened.status_code == 204
        set_cookie = opened.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        assert "path=/api/v1/events" in set_cookie
        with browser.stream("GET", "/api/v1/events") as stream:
            assert stream.status_code == 200
            first = next(stream.iter_lines())
            assert first.startswith("id: ")
        # The cookie's token is not a bearer token anywhere else.
        cookie_token = browser.cookies["escalations_stream"]
        assert call(api, "GET", "/handoffs", cookie_token).status_code == 401


def test_sigterm_closes_open_streams_cleanly_and_the_replica_exits(make_stack) -> None:
    (api,) = make_stack(replicas=1).replicas
    with SSEClient(api.port, token=SENIOR) as client:
        client.wait_ready()
        api.popen.send_signal(signal.SIGTERM)
        client.wait_for(lambda c: c.closed_by_server, timeout=15, what="the stream's end")
    # uvicorn re-raises the signal it handled, so the exit status says SIGTERM.
    assert api.popen.wait(15) == -signal.SIGTERM
    log = api.log_text()  # an unfinished response would be logged as an error
    assert '"level": "error"' not in log and "Traceback" not in log, log
