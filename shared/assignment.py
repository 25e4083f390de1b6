"""Assign mode: a handoff reaching a level whose mode is ``assign`` is given to
one present member of the level's target — the one with the fewest handoffs
claimed now, then the one assigned least recently (never assigned counts as
longest ago), then by id. Nobody present (or presence unreadable): no
assignment, and the level behaves as broadcast.

An assignment is a nudge, not a lock: anyone may still claim. It ends with the
level: a move to the next level, a claim, a cancel or a release clears it.

Concurrent assigners of one org are serialized by the per-org event counter row
that ``record_event`` locks: ``assign_on_level`` is called after the level's
event is recorded in the same transaction, so it reads the counts and
``last_assignments`` only once every earlier assignment of the org committed,
and three handoffs reaching an assign level at once go to three people.
"""

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from shared.db import dialect_insert
from shared.errors import ServiceUnavailable
from shared.events import record_event
from shared.models import (
    EventType,
    Handoff,
    HandoffStatus,
    LastAssignment,
    LevelMode,
    LevelTarget,
    TeamMember,
)
from shared.presence import Presence
from shared.timeutil import as_utc

log = logging.getLogger(__name__)

#: ``org_id`` → the org's present seniors and admins as ``(id, name)``.
PresentLookup = Callable[[str], Sequence[tuple[str, str]]]


def present_from(presence: Presence) -> PresentLookup:
    """A ``PresentLookup`` over Redis presence that answers nobody (so the level
    broadcasts) when Redis does not answer."""

    def lookup(org_id: str) -> list[tuple[str, str]]:
        try:
            people = presence.present(org_id=org_id).items
        except ServiceUnavailable:
            log.warning("presence unavailable: assign-mode level of org %s broadcasts", org_id)
            return []
        return [(person.id, person.name) for person in people]

    return lookup


def current_level(handoff: Handoff) -> dict[str, Any] | None:
    """The handoff's current copied level; None for handoffs older than levels."""
    levels = handoff.escalation_levels or ()
    return levels[handoff.escalation_level] if handoff.escalation_level < len(levels) else None


def assign_on_level(
    session: Session, *, handoff: Handoff, present: PresentLookup | None, now: datetime
) -> bool:
    """In assign mode, assign the pending ``handoff`` and record ``handoff_assigned``;
    returns whether it did. Call it in the transaction that put the handoff at its
    level, after recording that transaction's event (see the module docstring);
    the caller commits."""
    level = current_level(handoff)
    if present is None or level is None or level["mode"] != LevelMode.assign.value:
        return False
    if handoff.status != HandoffStatus.pending:
        return False
    candidates = _present_members(session, handoff, level, present(handoff.org_id))
    if not candidates:
        return False
    user_id, name = _least_busy(session, handoff.org_id, candidates)
    handoff.assigned_to_id, handoff.assigned_to_name = user_id, name
    handoff.updated_at = now
    session.add(handoff)
    session.flush()
    _remember(session, org_id=handoff.org_id, user_id=user_id, at=now)
    assignment = {
        "assigned_to_id": user_id,
        "assigned_to_name": name,
        "level": handoff.escalation_level,
        "loop": handoff.escalation_loop,
    }
    record_event(
        session,
        handoff=handoff,
        type=EventType.assigned,
        actor=None,
        data={"assignment": assignment},
    )
    return True


def _present_members(
    session: Session,
    handoff: Handoff,
    level: dict[str, Any],
    present: Sequence[tuple[str, str]],
) -> dict[str, str]:
    """Present people the level targets: id → name."""
    people = dict(present)
    if level["target"] == LevelTarget.all_seniors.value or level.get("team_id") is None:
        return people
    members = session.exec(
        select(TeamMember.user_id).where(
            TeamMember.org_id == handoff.org_id,
            TeamMember.team_id == level["team_id"],
            col(TeamMember.user_id).in_(list(people)),
        )
    )
    return {member: people[member] for member in members}


def _least_busy(session: Session, org_id: str, candidates: dict[str, str]) -> tuple[str, str]:
    ids = list(candidates)
    claimed = dict(
        session.exec(
            select(Handoff.claimed_by_id, func.count())
            .where(
                Handoff.org_id == org_id,
                Handoff.status == HandoffStatus.claimed.value,
                col(Handoff.claimed_by_id).in_(ids),
            )
            .group_by(col(Handoff.claimed_by_id))
        ).all()
    )
    last = dict(
        session.exec(
            select(LastAssignment.user_id, LastAssignment.assigned_at).where(
                LastAssignment.org_id == org_id, col(LastAssignment.user_id).in_(ids)
            )
        ).all()
    )

    def busyness(user_id: str) -> tuple[int, float, str]:
        assigned_at = last.get(user_id)
        least_recent = as_utc(assigned_at).timestamp() if assigned_at else float("-inf")
        return claimed.get(user_id, 0), least_recent, user_id

    chosen = min(ids, key=busyness)
    return chosen, candidates[chosen]


def _remember(session: Session, *, org_id: str, user_id: str, at: datetime) -> None:
    table = LastAssignment.__table__  # type: ignore[attr-defined]
    insert = dialect_insert(session.connection())
    session.execute(
        insert(table)
        .values(org_id=org_id, user_id=user_id, assigned_at=at)
        .on_conflict_do_update(
            index_elements=[table.c.org_id, table.c.user_id], set_={"assigned_at": at}
        )
    )
