"""bench/soak.py's invariants catch what they claim to: each check is fed a
recording with one thing broken (a gap, a duplicate, an early reset, a second
winner, a 500, an illegal transition) and must fail, and passes the same
recording unbroken."""

import random
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench import soak_checks as checks
from bench.soak_cluster import Window
from bench.soak_sse import Frame, Segment, StreamClient, parse_frame
from bench.soak_users import Answer, ClaimRace, Load, Tracked, make_orgs

SECRET = "s" * 40
ORG = "soak-org-1"
PORTS = [8001, 8002]


def _events(count: int, org: str = ORG) -> list[checks.DbEvent]:
    return [
        checks.DbEvent(org, seq, "handoff_created", f"h{seq}", "u", "pending")
        for seq in range(1, count + 1)
    ]


def _frame(seq: int, event: str = "handoff_created", org: str = ORG) -> Frame:
    return Frame(seq, event, f"h{seq}", org, seq, None)


def _client(*segments: Segment, cursor: int) -> StreamClient:
    client = StreamClient(0, org=ORG, token="t", ports=PORTS, rng=random.Random(0))
    client.segments = list(segments)
    client.cursor = cursor
    return client


def _segment(last_event_id: int | None, frames: list[Frame]) -> Segment:
    return Segment(0, last_event_id, 0.0, status=200, frames=frames, closed_by="client")


def _streams(client: StreamClient, events: int = 10, limit: int = 3) -> checks.Check:
    snapshot = checks.Snapshot({}, _events(events))
    return checks.check_streams([client], snapshot, final_seqs={ORG: events}, replay_limit=limit)


def _good_client() -> StreamClient:
    first = _segment(None, [_frame(2, "ready"), *map(_frame, range(3, 6))])
    second = _segment(5, [*map(_frame, range(6, 8)), _frame(7, "ready"), *map(_frame, (8, 9, 10))])
    return _client(first, second, cursor=10)


def test_streams_pass_when_every_event_arrives_once_in_order() -> None:
    assert _streams(_good_client()).ok


@pytest.mark.parametrize(
    "frames",
    [
        [_frame(5, "ready"), _frame(6), _frame(8), _frame(9), _frame(10)],  # gap
        [_frame(5, "ready"), _frame(6), _frame(6), _frame(7), _frame(8), _frame(9), _frame(10)],
        [_frame(5, "ready"), *map(_frame, range(6, 10)), _frame(10, org="soak-org-2")],
        [_frame(5, "ready"), *map(_frame, range(6, 10)), _frame(10, "handoff_claimed")],
        [_frame(5, "ready"), *map(_frame, range(6, 10))],  # ends short of the org's last event
    ],
    ids=["gap", "duplicate", "other org", "not as committed", "behind at the end"],
)
def test_streams_fail_on_a_broken_delivery(frames: list[Frame]) -> None:
    client = _client(_segment(None, frames), cursor=frames[-1].seq)
    assert not _streams(client).ok


def test_reset_only_beyond_the_replay_limit() -> None:
    early = _segment(8, [Frame(10, "reset", None, None, None, 10), _frame(10, "ready")])
    assert not _streams(_client(early, cursor=10), limit=3).ok
    late = _segment(2, [Frame(10, "reset", None, None, None, 10), _frame(10, "ready")])
    assert _streams(_client(late, cursor=10), limit=3).ok


def test_a_chunked_ping_is_a_comment_and_a_message_needs_an_id() -> None:
    assert parse_frame(b": ping - 2026-12-01") is None
    with pytest.raises(ValueError):
        parse_frame(b"event: handoff_created\ndata: {}")


def _answer(status: int | None, *, replica: int = 0, at: float = 100.0, body=None) -> Answer:  # type: ignore[no-untyped-def]
    return Answer("create", replica, at, at + 0.1, status, None if status else "refused", body)


REDIS_DOWN = Window("redis", "redis-1", 50.0, 60.0)
REPLICA_DOWN = Window("replica", f"api-{PORTS[1]}", 100.0, 105.0)


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        (_answer(201), True),
        (_answer(500), False),
        (_answer(503, at=55.0), True),
        (_answer(503, at=80.0), False),
        (_answer(None, replica=1, at=101.0), True),
        (_answer(None, replica=0, at=101.0), False),
    ],
    ids=["201", "500", "503 in outage", "503 outside", "error to killed", "error to other"],
)
def test_answers_allow_only_faults_own_failures(answer: Answer, ok: bool) -> None:
    assert checks.check_answers([answer], [REDIS_DOWN, REPLICA_DOWN], PORTS).ok is ok


def _race(*statuses: int, named: int = 0) -> ClaimRace:
    """Seniors 0, 1, ... answered ``statuses``; every body names senior ``named``."""
    org = make_orgs(1, secret=SECRET, ttl=timedelta(hours=1))[0]
    seniors = org.seniors[: len(statuses)]
    winner = seniors[named]
    claim = {"claimed_by_id": winner.id, "claimed_by_name": winner.name, "claimed_at": "t"}
    lost = {"error": "handoff_already_claimed", "detail": f"Already claimed by {winner.name}."}
    answers = [
        Answer("claim", 0, 1.0, 1.1, status, None,
               {"status": "claimed", **claim} if status == 200 else {**lost, **claim})
        for status in statuses
    ]  # fmt: skip
    return ClaimRace("h1", seniors, answers)


def test_races_need_exactly_one_winner_named_by_every_409() -> None:
    assert checks.check_races([_race(200, 409, 409)], []).ok
    assert not checks.check_races([_race(200, 200, 409)], []).ok
    assert not checks.check_races([_race(409, 200, 409)], []).ok  # the 409s name s0, not s1


def _load_with(history_types: list[str], *, db_status: str) -> tuple[Load, checks.Snapshot]:
    org = make_orgs(1, secret=SECRET, ttl=timedelta(hours=1))[0]
    load = Load.__new__(Load)
    load.orgs, load.unacknowledged_sessions = [org], set()
    load.idempotent_mismatches, load.idempotent_replays = [], 0
    tracked = Tracked("h1", org.name, org.engineers[0], status=db_status)
    actor = org.seniors[0].id
    tracked.accepted = [(t, actor) for t in history_types if t != "handoff_created"]
    org.handoffs["h1"] = tracked
    row = checks.DbHandoff("h1", org.name, "sess", db_status, "ready")
    statuses = {"handoff_created": "pending", "handoff_claimed": "claimed",
                "handoff_resolved": "resolved", "handoff_released": "pending",
                "handoff_cancelled": "cancelled"}  # fmt: skip
    events = [
        checks.DbEvent(org.name, seq, t, "h1", actor, statuses[t])
        for seq, t in enumerate(history_types, start=1)
    ]
    events.append(checks.DbEvent(org.name, len(events) + 1, "handoff_assessment_ready", "h1",
                                 None, events[-1].status))  # fmt: skip
    return load, checks.Snapshot({"h1": row}, events)


def test_history_must_be_a_legal_run_ending_in_the_stored_status() -> None:
    good = ["handoff_created", "handoff_claimed", "handoff_resolved"]
    assert checks.check_handoffs(*_load_with(good, db_status="resolved")).ok
    illegal = ["handoff_created", "handoff_resolved"]
    assert not checks.check_handoffs(*_load_with(illegal, db_status="resolved")).ok
    assert not checks.check_handoffs(*_load_with(good, db_status="claimed")).ok


def test_an_accepted_handoff_missing_from_the_database_fails() -> None:
    load, snapshot = _load_with(["handoff_created"], db_status="pending")
    assert not checks.check_handoffs(load, checks.Snapshot({}, [])).ok


def test_processes_fail_when_a_replica_or_worker_exited_unasked(tmp_path: Path) -> None:
    """A worker that ended on its own (here: exit code 1 after a traceback, as a
    worker killed by a Redis error did) is found by the cluster and fails the
    check; a SIGKILLed (retired) one and a running one do not count, nor a killed
    replica still listed while its successor starts (another fault may look then)."""
    from bench.soak_cluster import Cluster
    from testkit.procs import spawn

    def process(name: str, code: str) -> Any:
        return spawn(name, [sys.executable, "-c", code], port=0, log_dir=tmp_path)

    died = process("soak-worker-1", "print('ConnectionError: Connection refused'); exit(1)")
    running = process("soak-worker-2", "import time; time.sleep(60)")
    killed = process("soak-worker-3", "import time; time.sleep(60)")
    killed.kill()
    replica = process("soak-api-1", "import time; time.sleep(60)")
    replica.kill()
    cluster = Cluster(
        tmp_path,
        "",
        "",
        0,
        {},
        workers=[died, running],
        replicas=[replica],
        retired=[killed, replica],
    )
    try:
        died.popen.wait(10)
        exits = cluster.note_exits()
        assert cluster.note_exits() == exits  # each one once
        check = checks.check_processes(exits, watched=3)
        assert not check.ok
        assert [exit.name for exit in exits] == ["soak-worker-1"]
        assert "exited with 1" in check.problems[0] and "ConnectionError" in check.problems[0]
    finally:
        running.stop()
    assert checks.check_processes([], watched=3).ok
