"""The soak's re-escalation invariant, checked against the database: exactly one
``handoff_escalated`` per level and loop, in the order the handoff's levels
give, never before its deadline nor more than ``LATE_BOUND_SECONDS`` after it,
none while claimed (a release starts over at level 0, loop 0); at most one
``handoff_assigned`` per level reached, only at an ``assign`` level, to one of
the people the soak says may be assigned; and each handoff's stored level,
loop, next deadline and assignee agreeing with its history.

A handoff's history is cut into runs of levels: a run starts at
``handoff_created`` or ``handoff_released`` and ends at a claim or cancellation
(or is still running when the snapshot is read). The deadlines come from the
handoff each event embeds: the event that starts a run, or a move, is written in
the transaction that set the next deadline, so the check knows each deadline
exactly, not from the event's clock.
"""

from collections import Counter
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bench.soak_checks import Check, DbEvent, DbHandoff, Snapshot

#: A move may be this late (the workers sweep every second; a worker is SIGKILLed
#: now and then, and two cores are shared with everything else).
LATE_BOUND_SECONDS = 10.0
STARTS = ("handoff_created", "handoff_released")
STOPS = ("handoff_claimed", "handoff_cancelled", "handoff_resolved")
#: Stored and embedded times are both microseconds; allow for rounding only.
SAME_TIME = timedelta(milliseconds=1)


@dataclass
class _Run:
    """Where a handoff stands in its levels, replaying its history."""

    at: tuple[int, int] = (0, 0)
    running: bool = False
    deadline: datetime | None = None
    assignee: str | None = None


@dataclass
class _Tally:
    handoffs: int = 0
    runs: int = 0
    restarts: int = 0
    moves: Counter[tuple[int, int]] = field(default_factory=Counter)
    late: list[float] = field(default_factory=list)
    stopped_after_moving: int = 0
    finished: int = 0
    to_assign_levels: int = 0
    assigned: int = 0


def check_escalations(
    snapshot: Snapshot, *, assignable: Mapping[str, Set[str]] | None = None
) -> Check:
    """The invariant over every handoff of the snapshot (see the module).
    ``assignable``: org → the ids an assign level may pick (the soak's assign
    level targets all seniors: its seniors and admins); None: anyone."""
    problems: list[str] = []
    tally = _Tally()
    for handoff_id, history in snapshot.by_handoff().items():
        row = snapshot.handoffs.get(handoff_id)
        if row is None:
            continue  # check_handoffs reports it
        if row.after_seconds[1:] or row.repeat:
            tally.handoffs += 1
        people = None if assignable is None else assignable.get(row.org_id, set())
        problems += _handoff_problems(row, history, snapshot.read_at, tally, people)
    moved = sum(tally.moves.values())
    if tally.handoffs and not moved:
        problems.append(f"{tally.handoffs} handoffs under a policy, and not one moved")
    if tally.to_assign_levels and not tally.assigned:
        problems.append(f"{tally.to_assign_levels} moves to an assign level, not one assigned")
    return Check(
        "one handoff_escalated per level and loop, on time, none after a claim",
        not problems,
        _figures(tally, moved),
        problems,
    )


def _handoff_problems(
    row: DbHandoff,
    history: list[DbEvent],
    read_at: datetime | None,
    tally: _Tally,
    people: Set[str] | None,
) -> list[str]:
    run = _Run()
    for event in history:
        if event.type in STARTS:
            run = _Run((0, 0), True, event.deadline)
            tally.runs += 1
            tally.restarts += event.type == "handoff_released"
        elif event.type == "handoff_escalated":
            problem = _move_problem(row, event, run)
            if problem is not None:
                return [problem]
            tally.late.append((event.at - run.deadline).total_seconds())  # type: ignore[operator]
            tally.moves[(event.level, event.loop)] += 1  # type: ignore[index]
            run = _Run((event.level, event.loop), True, event.deadline)  # type: ignore[arg-type]
            tally.finished += event.deadline is None
            tally.to_assign_levels += _mode(row, run.at) == "assign"
        elif event.type == "handoff_assigned":
            problem = _assign_problem(row, event, run, people)
            if problem is not None:
                return [problem]
            run.assignee = event.assigned_to
            tally.assigned += 1
        elif event.type in STOPS and run.running:
            missed = _missed(row, run, event.at, f"its {event.type} (seq {event.seq})")
            if missed is not None:
                return [missed]
            tally.stopped_after_moving += run.at != (0, 0)
            run = _Run(run.at, False, None)
    if run.running and read_at is not None:
        missed = _missed(row, run, read_at, "the end")
        if missed is not None:
            return [missed]
    return _stored_problems(row, run)


def _move_problem(row: DbHandoff, event: DbEvent, run: _Run) -> str | None:
    reached = (event.level, event.loop)
    name = f"{row.id}: handoff_escalated seq {event.seq} to {reached}"
    if not run.running:
        return f"{name} while claimed, cancelled or resolved"
    expected = _next(row, run.at)
    if reached != expected:
        return f"{name} after {run.at}: expected {expected} (a repeat or a skip)"
    if run.deadline is None or event.at is None or event.at < run.deadline:
        return f"{name} at {event.at}, before its deadline {run.deadline}"
    assert event.level is not None and event.loop is not None
    due = run.deadline + timedelta(seconds=row.after_seconds[event.level])
    want = due if _next(row, (event.level, event.loop)) is not None else None
    if not _same(event.deadline, want):
        return f"{name}: next deadline {event.deadline}, want {want} (timed from the last one)"
    return None


def _assign_problem(
    row: DbHandoff, event: DbEvent, run: _Run, people: Set[str] | None
) -> str | None:
    name = f"{row.id}: handoff_assigned seq {event.seq} to {event.assigned_to}"
    if not run.running:
        return f"{name} while claimed, cancelled or resolved"
    if run.assignee is not None:
        return f"{name}: already assigned to {run.assignee} at {run.at}"
    if (event.level, event.loop) != run.at or _mode(row, run.at) != "assign":
        mode = _mode(row, run.at)
        return f"{name} at {(event.level, event.loop)}: the handoff is at {run.at}, mode {mode}"
    if people is not None and event.assigned_to not in people:
        return f"{name}: not one of those the level targets"
    return None


def _mode(row: DbHandoff, at: tuple[int, int]) -> str | None:
    return row.modes[at[0]] if at[0] < len(row.modes) else None


def _missed(row: DbHandoff, run: _Run, until: datetime | None, what: str) -> str | None:
    """A move due more than the bound before ``until`` that did not happen."""
    if run.deadline is None or until is None:
        return None
    overdue = (until - run.deadline).total_seconds()
    if overdue <= LATE_BOUND_SECONDS:
        return None
    return (
        f"{row.id}: at {run.at}, due to move at {run.deadline}, still there {overdue:.1f} s "
        f"later at {what}"
    )


def _stored_problems(row: DbHandoff, run: _Run) -> list[str]:
    stored = ((row.level, row.loop), row.next_at, row.assigned_to)
    if (
        stored[0] != run.at
        or not _same(row.next_at, run.deadline if run.running else None)
        or row.assigned_to != run.assignee
    ):
        return [f"{row.id}: stored level, loop, deadline, assignee {stored}, history says {run}"]
    return []


def _next(row: DbHandoff, at: tuple[int, int]) -> tuple[int, int] | None:
    """``shared.routing.escalation``'s rule, restated: the next level, then the next loop."""
    level, loop = at
    if level + 1 < len(row.after_seconds):
        return level + 1, loop
    if loop < row.repeat:
        return 0, loop + 1
    return None


def _same(one: datetime | None, other: datetime | None) -> bool:
    if one is None or other is None:
        return one is other
    return abs(one - other) <= SAME_TIME


def _figures(tally: _Tally, moved: int) -> str:
    late = sorted(tally.late)
    lateness = (
        f"late by p50 {_at(late, 0.5):.2f} s, p99 {_at(late, 0.99):.2f} s, max {late[-1]:.2f} s "
        f"(bound {LATE_BOUND_SECONDS:.0f} s)"
        if late
        else "none late"
    )
    per_level = ", ".join(f"{key}: {n}" for key, n in sorted(tally.moves.items()))
    return (
        f"{tally.handoffs} handoffs under a policy, {tally.runs} runs of levels "
        f"({tally.restarts} after a release); {moved} moves ((level, loop): {per_level or '-'}); "
        f"{tally.assigned} of {tally.to_assign_levels} moves to an assign level assigned; "
        f"{tally.stopped_after_moving} claimed or cancelled after moving, {tally.finished} reached "
        f"the last level of the last loop; {lateness}"
    )


def _at(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]
