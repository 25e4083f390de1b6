"""Re-escalation: a handoff still pending at its level's deadline moves to the
next level, and after the last one back to level 0 while repeats are left.

A handoff copies its org's effective policy when it is created (``plan_levels``),
so a later policy change leaves open handoffs alone. The deadline of the next
move is stored with the handoff (``next_escalation_at``; null when no move is
left), and the sweep has the claim SLA's shape (``shared.routing.sla``): find what is
due, then move each handoff, if the deadline it reads now is still due, with an
UPDATE conditional on the (level, loop, deadline) it read, so concurrent sweeps
in several workers record one ``handoff_escalated`` per level and loop, a list
made stale by another sweep's move never moves a level early, and a stale read
(claimed, released and started over meanwhile) changes nothing.

Every deadline counts from when the previous level was due (creation or the last
release plus the levels' delays), never from when a sweep noticed it, and a
handoff several levels overdue catches up in one sweep, one transaction and one
event per level in order. So a move is late only by the time until the next
sweep: the worker wakes for ``next_escalation_due`` (services/worker/main.py).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from shared.core.db import rows_changed, session_scope
from shared.core.timeutil import as_utc, utcnow
from shared.events.models import EscalationMove, EventData, EventType
from shared.events.outbox import record_event
from shared.handoffs.models import Handoff, HandoffStatus
from shared.routing.assignment import PresentLookup, assign_on_level, once_per_org, present_at
from shared.routing.models import LevelTarget, Team, TeamDomain
from shared.routing.policies import get_policy
from shared.routing.sla import sweep_due

BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class Plan:
    """The levels a new handoff copies (targets resolved) and the policy's repeat."""

    levels: list[dict[str, Any]]
    repeat: int


def plan_levels(
    *, session: Session, org_id: str, problem_domain: str, claim_sla_seconds: int
) -> Plan:
    """The org's effective policy for a handoff of ``problem_domain``: each level as
    ``{"after_seconds", "target", "team_id", "team_name", "mode"}``. A
    ``domain_team`` level names the team owning the domain now, or becomes
    ``all_seniors`` when no team owns it."""
    policy = get_policy(session=session, org_id=org_id, claim_sla_seconds=claim_sla_seconds)
    owner: Team | None = None
    if any(level.target is LevelTarget.domain_team for level in policy.levels):
        owner = session.exec(
            select(Team)
            .join(TeamDomain, col(TeamDomain.team_id) == Team.id)
            .where(TeamDomain.org_id == org_id, TeamDomain.domain == problem_domain)
        ).first()
    levels = []
    for level in policy.levels:
        target, team_id, team_name = level.target.value, level.team_id, level.team_name
        if level.target is LevelTarget.domain_team:
            if owner is None:
                target = LevelTarget.all_seniors.value
            else:
                team_id, team_name = owner.id, owner.name
        levels.append(
            {
                "after_seconds": level.after_seconds,
                "target": target,
                "team_id": team_id,
                "team_name": team_name,
                "mode": level.mode.value,
            }
        )
    return Plan(levels=levels, repeat=policy.repeat)


def start_levels(handoff: Handoff, at: datetime) -> None:
    """Put ``handoff`` at level 0, loop 0, reached ``at``, unassigned: on creation
    and release (``shared.routing.assignment.assign_on_level`` may then assign it)."""
    for name, value in level_zero(handoff, at).items():
        setattr(handoff, name, value)


def level_zero(handoff: Handoff, at: datetime) -> dict[str, Any]:
    """The values :func:`start_levels` sets, read from ``handoff``'s levels and repeat."""
    return {
        "escalation_level": 0,
        "escalation_loop": 0,
        "escalation_team_id": _team_of(handoff, 0),
        "assigned_to_id": None,
        "assigned_to_name": None,
        "next_escalation_at": _deadline(handoff, level=0, loop=0, reached_at=at),
    }


def _team_of(handoff: Handoff, level: int) -> str | None:
    levels = handoff.escalation_levels or ()
    return levels[level]["team_id"] if level < len(levels) else None


def _next_move(handoff: Handoff, level: int, loop: int) -> tuple[int, int] | None:
    """The (level, loop) after ``(level, loop)``, or None when none is left."""
    levels = handoff.escalation_levels or ()
    if level + 1 < len(levels):
        return level + 1, loop
    if loop < handoff.escalation_repeat:
        return 0, loop + 1
    return None


def _deadline(handoff: Handoff, *, level: int, loop: int, reached_at: datetime) -> datetime | None:
    """When the handoff, at ``(level, loop)`` since ``reached_at``, moves on; None
    when it would not move (so a one-level policy without repeats is never swept)."""
    if _next_move(handoff, level, loop) is None:
        return None
    levels = handoff.escalation_levels or ()
    return reached_at + timedelta(seconds=int(levels[level]["after_seconds"]))


# --- the sweep ---------------------------------------------------------------------


def sweep_escalations(
    *, engine: Engine, now: datetime | None = None, present: PresentLookup | None = None
) -> int:
    """Make every move due by ``now``: a handoff several levels (or loops) overdue
    moves through each of them in this call, each move its own transaction and
    ``handoff_escalated`` event, in order. A handoff that reaches an assign-mode
    level is assigned to one of the ``present`` (no one when None), also on a
    level it leaves again in the same call. Returns how many moves this call
    recorded."""

    present_once = once_per_org(present)

    def catch_up(session: Session, handoff_id: str, at: datetime) -> int:
        # Each _move advances (level, loop) or returns 0 (not due, moved by another
        # sweep, or the last loop ended), so this ends within levels × (repeat + 1).
        moved = 0
        while _move(session, handoff_id, at, present_once):
            moved += 1
        return moved

    return sweep_due(engine=engine, now=now or utcnow(), due=_due, act=catch_up)


def next_escalation_due(*, engine: Engine) -> datetime | None:
    """The earliest deadline of a pending handoff's next move (None: none is
    left), read through the sweep's partial index; for the worker to wake then."""
    with session_scope(engine) as session:
        deadline = session.exec(
            select(func.min(col(Handoff.next_escalation_at))).where(
                col(Handoff.next_escalation_at).is_not(None),
                col(Handoff.status) == HandoffStatus.pending.value,
            )
        ).one()
    return as_utc(deadline) if deadline is not None else None


def _due(session: Session, now: datetime) -> list[str]:
    deadline = col(Handoff.next_escalation_at)
    statement = (
        select(Handoff.id)
        .where(
            deadline.is_not(None),
            deadline <= now,
            col(Handoff.status) == HandoffStatus.pending.value,
        )
        .order_by(deadline)
        .limit(BATCH_SIZE)
    )
    return list(session.exec(statement))


def _move(session: Session, handoff_id: str, now: datetime, present: PresentLookup | None) -> int:
    handoff = session.exec(
        select(Handoff).where(Handoff.id == handoff_id).execution_options(populate_existing=True)
    ).one()
    read_deadline = handoff.next_escalation_at
    # Listed as due, but maybe moved by another sweep since, to a level due later.
    if (
        handoff.status != HandoffStatus.pending
        or read_deadline is None
        or as_utc(read_deadline) > now
    ):
        return 0
    level, loop = handoff.escalation_level, handoff.escalation_loop
    move = _next_move(handoff, level, loop)
    if move is None:  # cannot happen for deadlines this module wrote; stop cleanly
        new_level, new_loop, new_deadline = level, loop, None
    else:
        new_level, new_loop = move
        # Timed from when the level was due, not from when a sweep noticed it.
        new_deadline = _deadline(
            handoff, level=new_level, loop=new_loop, reached_at=as_utc(read_deadline)
        )
    people = present_at(handoff, new_level, present, session=session) if move is not None else ()
    moved = session.execute(
        update(Handoff)
        .where(
            col(Handoff.id) == handoff_id,
            col(Handoff.status) == HandoffStatus.pending.value,
            col(Handoff.escalation_level) == level,
            col(Handoff.escalation_loop) == loop,
            col(Handoff.next_escalation_at) == read_deadline,
        )
        .values(
            escalation_level=new_level,
            escalation_loop=new_loop,
            next_escalation_at=new_deadline,
            escalation_team_id=_team_of(handoff, new_level),
            assigned_to_id=None,  # an assignment ends with its level
            assigned_to_name=None,
            updated_at=now,
        )
    )
    if rows_changed(moved) != 1:
        session.rollback()  # another sweep moved it first, or a claim or release came
        return 0
    if move is None:
        session.commit()
        return 0
    handoff = session.exec(
        select(Handoff).where(Handoff.id == handoff_id).execution_options(populate_existing=True)
    ).one()
    reached = (handoff.escalation_levels or ())[new_level]
    escalation = EscalationMove(
        level=new_level,
        loop=new_loop,
        target=reached["target"],
        team_id=reached["team_id"],
        mode=reached["mode"],
    )
    record_event(
        session,
        handoff=handoff,
        type=EventType.escalated,
        actor=None,
        data=EventData(escalation=escalation),
    )
    assign_on_level(session, handoff=handoff, people=people, now=now)
    session.commit()
    return 1
