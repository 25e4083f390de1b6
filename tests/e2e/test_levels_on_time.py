"""Levels on time (issue 18, done-when 2), with real processes at the DEFAULT
maintenance interval (5 s): an ``escalations api``, an ``escalations worker``,
a private Redis and the run's PostgreSQL.

Each move must land within the interval + 1 s of its own due time: the moment
the handoff was created plus the delays of the levels passed (not counted from
when the previous move happened). The worker sweeps on its 5 s tick and also
wakes for the next due deadline; a handoff several levels behind catches up in
one sweep. Before that, a sweep moved a handoff one level and the worker slept
a whole interval: six 1 s levels moved 5, 9, 13, 17 and 21 s late, and
10 levels × repeat 5 finished minutes late instead of at 59 s.
"""

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.core.models import Role
from shared.core.redis_client import make_redis
from shared.core.settings import Settings
from testkit.procs import Proc, api_env, poll, redis_url
from testkit.workers import start_worker
from tests.conftest import TEST_SECRET, handoff_body
from tests.e2e.conftest import StartReplica
from tests.e2e.test_escalation_levels import Org

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

LEVEL_SECONDS = 1
#: The default, which these tests must not change.
INTERVAL_SECONDS = Settings.model_fields["maintenance_interval_seconds"].default
#: The contract: a move lands at most this long after its own due time.
LATE_BOUND = timedelta(seconds=INTERVAL_SECONDS + 1)


@pytest.fixture
def replica_and_worker(
    start_replica: StartReplica, postgres_url: str, private_redis: Proc, process_logs: Path
) -> Iterator[Proc]:
    env = api_env(
        database_url=postgres_url,
        redis_url=redis_url(private_redis.port),
        jwt_secret=TEST_SECRET,
        assessor="heuristic",
    )
    assert "ESCALATIONS_MAINTENANCE_INTERVAL_SECONDS" not in env  # the default, 5 s
    replica = start_replica(env)
    with ExitStack() as stack:
        redis = make_redis(redis_url(private_redis.port))
        stack.callback(redis.close)
        name = f"on-time-{uuid.uuid4().hex[:6]}"
        worker = start_worker(name, env=env, log_dir=process_logs, redis=redis)
        stack.callback(worker.stop)
        yield replica


def _levels(count: int) -> list[dict[str, Any]]:
    return [{"after_seconds": LEVEL_SECONDS, "target": "all_seniors", "mode": "broadcast"}] * count


def _run_to_the_end(replica: Proc, *, levels: int, repeat: int) -> list[tuple[Any, ...]]:
    """Create a handoff under ``levels`` 1 s levels and ``repeat``, wait for its
    last move; returns each move as (level, loop, due, landed)."""
    org = Org()
    org.policy(replica, _levels(levels), repeat=repeat)
    handoff = org.call(
        replica, Role.engineer, "POST", "/handoffs", handoff_body(f"sess-{uuid.uuid4().hex[:8]}")
    )
    start = _time(handoff["next_escalation_at"]) - timedelta(seconds=LEVEL_SECONDS)
    total = levels * (repeat + 1) - 1
    last_due = total * LEVEL_SECONDS
    poll(
        lambda: (
            org.call(replica, Role.senior, "GET", f"/handoffs/{handoff['id']}")[
                "next_escalation_at"
            ]
            is None
        ),
        timeout=last_due + 3 * INTERVAL_SECONDS + 30,
        what="the last move",
    )
    history = org.call(replica, Role.senior, "GET", f"/handoffs/{handoff['id']}/history")
    moved = [event for event in history["items"] if event["type"] == "handoff_escalated"]
    assert len(moved) == total, [event["data"] for event in moved]
    return [
        (
            event["data"]["escalation"]["level"],
            event["data"]["escalation"]["loop"],
            start + timedelta(seconds=(n + 1) * LEVEL_SECONDS),
            _time(event["at"]),
        )
        for n, event in enumerate(moved)
    ]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _check(moves: list[tuple[Any, ...]], *, levels: int, repeat: int) -> float:
    """Every move once, in order, never early, never later than the bound;
    returns the latest (seconds)."""
    order = [(level, loop) for loop in range(repeat + 1) for level in range(levels)][1:]
    assert [(level, loop) for level, loop, _, _ in moves] == order
    lateness = [(landed - due).total_seconds() for _, _, due, landed in moves]
    print("seconds late per move:", " ".join(f"{late:.2f}" for late in lateness))
    assert min(lateness) >= 0, "a level moved before it was due"
    late = [(n + 1, round(x, 2)) for n, x in enumerate(lateness) if x > LATE_BOUND.total_seconds()]
    assert not late, f"moves later than {LATE_BOUND}: {late}"
    return max(lateness)


def test_six_1_s_levels_each_move_on_time(replica_and_worker: Proc) -> None:
    moves = _run_to_the_end(replica_and_worker, levels=6, repeat=0)
    _check(moves, levels=6, repeat=0)


def test_ten_1_s_levels_repeat_5_finish_on_time(replica_and_worker: Proc) -> None:
    moves = _run_to_the_end(replica_and_worker, levels=10, repeat=5)
    _check(moves, levels=10, repeat=5)
    start = moves[0][2] - timedelta(seconds=LEVEL_SECONDS)
    finished = (moves[-1][3] - start).total_seconds()
    print(f"59 moves finished {finished:.1f} s after creation")
    assert finished <= 59 + INTERVAL_SECONDS + 1
