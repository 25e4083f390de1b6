"""Claim races across two real API replicas over real HTTP.

Two ``escalations api`` processes share one fresh PostgreSQL database and a
private redis-server. Each run creates a handoff and fires 50 claims by 50
distinct seniors at once, 25 at each replica: exactly one wins, the other 49
get 409 naming that winner, and the history holds one ``handoff_claimed``.
The same runs are repeated with the redis-server killed, where the conditional
database update alone must settle every race.
"""

import asyncio
import uuid
from collections.abc import Sequence

import httpx
import pytest

from testkit.procs import Proc, api_env, base_url
from testkit.storm import (
    API,
    Claimer,
    Storm,
    claim_storm,
    create_handoff,
    engineer_headers,
    make_seniors,
    open_claimers,
    storm_problems,
)
from tests.conftest import TEST_SECRET
from tests.e2e.conftest import Backend, StartReplica

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

RUNS = 20
#: Through PgBouncer or over TLS the race is the same one; fewer runs prove the transport.
RUNS_PER_TRANSPORT = 5
CLAIMERS = 50
REPLICAS = 2
MIN_IN_FLIGHT = CLAIMERS // 2  # claims already sent when the first answer arrives


@pytest.fixture
def replicas(backend: Backend, start_replica: StartReplica) -> list[Proc]:
    """Two ready replicas over a private Redis and the run's PostgreSQL database
    (directly, through PgBouncer, or with Redis over TLS)."""
    env = api_env(
        database_url=backend.database_url,
        redis_url=backend.redis_url,
        jwt_secret=TEST_SECRET,
    )
    return [start_replica(env) for _ in range(REPLICAS)]


def test_redis_lock_settles_every_race(replicas: list[Proc], backend: Backend) -> None:
    run_races(replicas, runs=_runs(backend))
    assert_logs_lack(replicas, "claim lock unavailable")  # the lock really was in play
    assert_logs_lack(replicas, "unhandled error")


def test_database_alone_settles_every_race_when_redis_is_down(
    replicas: list[Proc], backend: Backend
) -> None:
    backend.redis.kill()
    assert_not_ready_for_redis(replicas)

    run_races(replicas, runs=_runs(backend))  # creates answer 201 without enqueueing

    assert_logs_contain(replicas, "could not enqueue assessment")
    assert_logs_contain(replicas, "claim lock unavailable")
    assert_logs_lack(replicas, "unhandled error")


# --- the runs --------------------------------------------------------------------


def _runs(backend: Backend) -> int:
    return RUNS if backend.shape == "direct" else RUNS_PER_TRANSPORT


def run_races(replicas: Sequence[Proc], *, runs: int) -> None:
    """``runs`` storms in a row, each on a new handoff; fails on the first bad one."""
    asyncio.run(_run_races([base_url(proc.port) for proc in replicas], runs))


async def _run_races(urls: list[str], runs: int) -> None:
    org = f"race-{uuid.uuid4().hex[:8]}"
    seniors = make_seniors(CLAIMERS, secret=TEST_SECRET, org=org)
    engineer = engineer_headers(secret=TEST_SECRET, org=org)
    async with open_claimers(seniors, urls) as claimers:
        for run in range(runs):
            creator = claimers[run % len(urls)].client  # alternate the replica that creates
            handoff_id = await create_handoff(creator, headers=engineer)
            storm = await claim_storm(claimers, handoff_id=handoff_id)
            assert storm_problems(storm) == [], f"run {run}, handoff {handoff_id}"
            assert storm.sent_before_first_answer >= MIN_IN_FLIGHT, "the claims did not overlap"
            await _assert_one_claim_event(claimers[-1], storm)


async def _assert_one_claim_event(reader: Claimer, storm: Storm) -> None:
    """The history holds exactly one ``handoff_claimed``, by the storm's winner."""
    response = await reader.client.get(
        f"{API}/{storm.handoff_id}/history", headers=reader.senior.headers
    )
    assert response.status_code == 200, response.text
    claimed = [event for event in response.json()["items"] if event["type"] == "handoff_claimed"]
    (winner,) = storm.with_status(200)
    assert [event["actor_id"] for event in claimed] == [winner.senior.user_id]
    assert claimed[0]["handoff"]["claimed_at"] == winner.body["claimed_at"]


# --- process checks ----------------------------------------------------------------


def assert_not_ready_for_redis(replicas: Sequence[Proc]) -> None:
    """Each replica's /readyz says 503 because Redis is unavailable."""
    for proc in replicas:
        response = httpx.get(f"{base_url(proc.port)}/readyz", timeout=10.0)
        assert response.status_code == 503, response.text
        assert response.json()["checks"]["redis"] == "unavailable"


def assert_logs_contain(replicas: Sequence[Proc], text: str) -> None:
    assert any(text in proc.log_text() for proc in replicas), text


def assert_logs_lack(replicas: Sequence[Proc], text: str) -> None:
    for proc in replicas:
        log = proc.log_text()
        assert text not in log, f"{proc.name} logged {text!r}:\n{log[-3000:]}"
