"""bench/soak_escalations.py's invariant catches what it claims to: a history of
level moves with one thing broken (a repeat, a skip, an early or missed move, a
move while claimed, a drifting deadline, a stored state that disagrees, an
assignment twice, at a broadcast level, while claimed or to someone the level
does not target) fails, and the same history unbroken passes."""

from datetime import UTC, datetime, timedelta

import pytest

from bench import soak_checks as checks
from bench.soak_escalations import check_escalations

ORG = "soak-org-1"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
POLICY = (2, 3)  # after_seconds of the two levels; looped once
STATUS_AFTER = {"handoff_claimed": "claimed", "handoff_cancelled": "cancelled"}


def _t(seconds: float | None) -> datetime | None:
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def _event(
    kind: str,
    at: float,
    deadline: float | None = None,
    moved: tuple[int, int] | None = None,
    assignee: str | None = None,
) -> tuple:
    return (kind, at, deadline, moved, assignee)


def _snapshot(
    *events: tuple,
    stored: tuple[int, int, float | None],
    read_at: float = 30.0,
    after_seconds: tuple[int, ...] = POLICY,
    repeat: int = 1,
    modes: tuple[str, ...] = ("broadcast", "broadcast"),
    assigned_to: str | None = None,
) -> checks.Snapshot:
    status, history = "pending", []
    for seq, (kind, at, deadline, moved, assignee) in enumerate(events, start=1):
        status = STATUS_AFTER.get(kind, "pending" if kind == "handoff_released" else status)
        level, loop = moved if moved is not None else (None, None)
        history.append(
            checks.DbEvent(
                ORG, seq, kind, "h1", None, status, level, loop, _t(at), _t(deadline), assignee
            )
        )
    level, loop, next_at = stored
    row = checks.DbHandoff(
        "h1",
        ORG,
        "sess",
        status,
        "ready",
        level,
        loop,
        _t(next_at),
        after_seconds,
        repeat,
        modes,
        assigned_to,
    )
    return checks.Snapshot({"h1": row}, history, _t(read_at))


CREATED = _event("handoff_created", 0.0, deadline=2.0)
MOVES = [
    _event("handoff_escalated", 2.5, deadline=5.0, moved=(1, 0)),
    _event("handoff_escalated", 5.2, deadline=7.0, moved=(0, 1)),
    _event("handoff_escalated", 7.1, deadline=None, moved=(1, 1)),
]


def test_every_level_and_loop_once_on_time_passes() -> None:
    check = check_escalations(_snapshot(CREATED, *MOVES, stored=(1, 1, None)))
    assert check.ok, check.problems
    assert "3 moves" in check.figures


def test_a_release_starts_over_at_level_0() -> None:
    snapshot = _snapshot(
        CREATED,
        MOVES[0],
        _event("handoff_claimed", 3.0),
        _event("handoff_released", 10.0, deadline=12.0),
        _event("handoff_escalated", 12.3, deadline=15.0, moved=(1, 0)),
        stored=(1, 0, 15.0),
        read_at=14.0,
    )
    check = check_escalations(snapshot)
    assert check.ok, check.problems


def test_an_org_without_a_policy_never_moves() -> None:
    quiet = _snapshot(
        _event("handoff_created", 0.0), stored=(0, 0, None), after_seconds=(300,), repeat=0
    )
    assert check_escalations(quiet).ok
    moved = _snapshot(
        _event("handoff_created", 0.0),
        _event("handoff_escalated", 300.5, moved=(1, 0)),
        stored=(1, 0, None),
        read_at=400.0,
        after_seconds=(300,),
        repeat=0,
    )
    assert not check_escalations(moved).ok


BROKEN = {  # name: (history, stored (level, loop, deadline), read at, the problem named)
    "repeated level": ([CREATED, MOVES[0], MOVES[0]], (1, 0, 5.0), 6.0, "a repeat or a skip"),
    "skipped level": ([CREATED, MOVES[0], MOVES[2]], (1, 1, None), 30.0, "a repeat or a skip"),
    "before its deadline": (
        [CREATED, _event("handoff_escalated", 1.9, deadline=5.0, moved=(1, 0))],
        (1, 0, 5.0),
        4.0,
        "before its deadline",
    ),
    "deadline timed from the sweep": (
        [CREATED, _event("handoff_escalated", 2.5, deadline=5.5, moved=(1, 0))],
        (1, 0, 5.5),
        4.0,
        "timed from the last one",
    ),
    "moved while claimed": (
        [CREATED, _event("handoff_claimed", 1.0), MOVES[0]],
        (1, 0, None),
        30.0,
        "while claimed",
    ),
    "missed, still pending": ([CREATED], (0, 0, 2.0), 30.0, "still there 28.0 s later at the end"),
    "missed, then claimed": (
        [CREATED, _event("handoff_claimed", 20.0)],
        (0, 0, None),
        30.0,
        "still there 18.0 s later at its handoff_claimed",
    ),
    "stored level disagrees": ([CREATED, *MOVES], (0, 0, None), 30.0, "stored level"),
    "claimed, a deadline stored": (
        [CREATED, _event("handoff_claimed", 1.0)],
        (0, 0, 2.0),
        30.0,
        "stored level",
    ),
    "a policy and not one move": ([CREATED], (0, 0, 2.0), 5.0, "not one moved"),
}


@pytest.mark.parametrize(("events", "stored", "read_at", "named"), BROKEN.values(), ids=BROKEN)
def test_a_broken_history_fails_naming_what_broke(
    events: list[tuple], stored: tuple[int, int, float | None], read_at: float, named: str
) -> None:
    check = check_escalations(_snapshot(*events, stored=stored, read_at=read_at))
    assert not check.ok
    assert any(named in problem for problem in check.problems), check.problems


ASSIGNING = ("broadcast", "assign")
PEOPLE = {ORG: {"s1", "s2"}}


def _assigned(at: float, moved: tuple[int, int], assignee: str = "s1") -> tuple:
    return _event("handoff_assigned", at, moved=moved, assignee=assignee)


def test_one_assignment_per_assign_level_passes() -> None:
    snapshot = _snapshot(
        CREATED,
        MOVES[0],
        _assigned(2.5, (1, 0)),
        MOVES[1],
        MOVES[2],
        _assigned(7.1, (1, 1), "s2"),
        stored=(1, 1, None),
        modes=ASSIGNING,
        assigned_to="s2",
    )
    check = check_escalations(snapshot, assignable=PEOPLE)
    assert check.ok, check.problems
    assert "2 of 2 moves to an assign level assigned" in check.figures


BROKEN_ASSIGNMENTS = {  # name: (history, stored assignee, the problem named)
    "assigned twice": (
        [CREATED, MOVES[0], _assigned(2.5, (1, 0)), _assigned(2.6, (1, 0), "s2")],
        "s2",
        "already assigned",
    ),
    "at a broadcast level": (
        [CREATED, MOVES[0], _assigned(2.5, (1, 0)), MOVES[1], _assigned(5.2, (0, 1))],
        "s1",
        "mode broadcast",
    ),
    "while claimed": (
        [CREATED, MOVES[0], _event("handoff_claimed", 3.0), _assigned(3.1, (1, 0))],
        "s1",
        "while claimed",
    ),
    "to someone the level does not target": (
        [CREATED, MOVES[0], _assigned(2.5, (1, 0), "x")],
        "x",
        "not one of those the level targets",
    ),
    "stored assignee outlives the claim": (
        [CREATED, MOVES[0], _assigned(2.5, (1, 0)), _event("handoff_claimed", 3.0)],
        "s1",
        "stored level",
    ),
    "never assigned": ([CREATED, MOVES[0]], None, "not one assigned"),
}


@pytest.mark.parametrize(
    ("events", "assignee", "named"), BROKEN_ASSIGNMENTS.values(), ids=BROKEN_ASSIGNMENTS
)
def test_a_broken_assignment_fails_naming_what_broke(
    events: list[tuple], assignee: str | None, named: str
) -> None:
    claimed = any(event[0] == "handoff_claimed" for event in events)
    moved = [event[3] for event in events if event[0] == "handoff_escalated"][-1]
    deadline = None if claimed else {(1, 0): 5.0, (0, 1): 7.0}[moved]
    snapshot = _snapshot(
        *events, stored=(*moved, deadline), read_at=6.0, modes=ASSIGNING, assigned_to=assignee
    )
    check = check_escalations(snapshot, assignable=PEOPLE)
    assert not check.ok
    assert any(named in problem for problem in check.problems), check.problems
