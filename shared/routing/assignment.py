"""Assign mode: a handoff reaching a level whose mode is ``assign`` is given to
one present member of the level's target — the one with the fewest handoffs
claimed now, then the one assigned least recently (never assigned counts as
longest ago), then by id. Nobody present (or presence unreadable): no
assignment, and the level behaves as broadcast.

An assignment is a nudge, not a lock: anyone may still claim. It ends with the
level: a move to the next level, a claim, a cancel or a release clears it (and
the senior who released a handoff is not the one it is assigned to again).

Concurrent assigners of one org are serialized by the per-org event counter row
that ``record_event`` locks: ``assign_on_level`` is called after the level's
event is recorded in the same transaction, so it reads the counts and
``last_assignments`` only once every earlier assignment of the org committed.
"Least recently" is the ``seq`` of the person's last ``handoff_assigned``
event, which that lock makes increase in commit order (a clock time taken
before the lock, or one time for a whole sweep, would not): handoffs reaching
an assign level together go round the present people in turn. Who is present
is read from Redis before any lock is held (``present_at``).
"""

import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from shared.auth.people import CLAIMING_ROLES, known_person
from shared.core.db import dialect_insert
from shared.core.errors import ServiceUnavailable
from shared.core.models import Role
from shared.events.models import Assignment, EventData, EventType
from shared.events.outbox import record_event
from shared.handoffs.models import Handoff, HandoffStatus
from shared.routing.models import LastAssignment, LevelMode, LevelTarget, TeamMember
from shared.routing.presence import Presence

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
            raise
        return [(person.id, person.name) for person in people]

    return lookup


def once_per_org(present: PresentLookup | None) -> PresentLookup | None:
    """``present`` read at most once per org, and not at all after Redis failed
    once: for one sweep, so a hung Redis costs one timeout, not one per move."""
    if present is None:
        return None
    answers: dict[str, Sequence[tuple[str, str]]] = {}
    failed = False

    def lookup(org_id: str) -> Sequence[tuple[str, str]]:
        nonlocal failed
        if failed:
            raise ServiceUnavailable("presence failed earlier in this sweep")
        if org_id not in answers:
            try:
                answers[org_id] = present(org_id)
            except ServiceUnavailable:
                failed = True
                raise
        return answers[org_id]

    return lookup


def present_at(
    handoff: Handoff, level: int, present: PresentLookup | None, *, session: Session
) -> Sequence[tuple[str, str]]:
    """Who is present to be assigned ``handoff`` at ``level``: read only when that
    level assigns (otherwise, and with no ``present`` or no Redis, nobody). Ends
    ``session``'s transaction first, which must hold nothing yet (only reads), so
    no database lock waits on Redis (SQLite's ``BEGIN IMMEDIATE`` locks it all)."""
    if present is None or _level(handoff, level).get("mode") != LevelMode.assign.value:
        return ()
    session.rollback()
    try:
        return present(handoff.org_id)
    except ServiceUnavailable:
        return ()


def _level(handoff: Handoff, level: int) -> dict[str, Any]:
    """A copied level; ``{}`` for handoffs older than levels."""
    levels = handoff.escalation_levels or ()
    return levels[level] if level < len(levels) else {}


def assign_on_level(
    session: Session,
    *,
    handoff: Handoff,
    people: Sequence[tuple[str, str]],
    now: datetime,
    not_to: str | None = None,
) -> bool:
    """At an assign-mode level, assign the pending ``handoff`` to one of ``people``
    (``present_at``'s answer for this level) other than ``not_to``, and record
    ``handoff_assigned``; returns whether it did. Call it in the transaction that
    put the handoff at its level, after recording that transaction's event (see
    the module docstring); the caller commits."""
    level = _level(handoff, handoff.escalation_level)
    if not people or level.get("mode") != LevelMode.assign.value:
        return False
    if handoff.status != HandoffStatus.pending:
        return False
    candidates = _present_members(session, handoff, level, people)
    if not_to is not None:
        candidates.pop(not_to, None)
    if not candidates:
        return False
    user_id, name = _least_busy(session, handoff.org_id, candidates)
    handoff.assigned_to_id, handoff.assigned_to_name = user_id, name
    handoff.updated_at = now
    session.add(handoff)
    session.flush()
    assignment = Assignment(
        assigned_to_id=user_id,
        assigned_to_name=name,
        level=handoff.escalation_level,
        loop=handoff.escalation_loop,
    )
    event = record_event(
        session,
        handoff=handoff,
        type=EventType.assigned,
        actor=None,
        data=EventData(assignment=assignment),
    )
    _remember(session, org_id=handoff.org_id, user_id=user_id, seq=event.seq, at=now)
    return True


def reassignee_name(
    session: Session, *, org_id: str, to_id: str, to_name: str, present: PresentLookup | None
) -> str | None:
    """The name to record for handing a claim to ``to_id``, who must be able to
    work it: present now (presence counts only seniors and admins), or known to
    the org as a senior or admin (``shared.auth.people``: seen within 90 days with that
    role). None for anyone else, a team member whose role is unknown included: a
    claim given to someone who cannot resolve, release or reassign it is stuck.
    ``to_name`` is kept when it is a name the org knows them by, else the known
    one is used. Read presence before locking anything: it waits on Redis."""
    known: list[str] = []
    if present is not None:
        with suppress(ServiceUnavailable):  # without Redis, known seniors can still be chosen
            known += [name for person_id, name in present(org_id) if person_id == to_id]
    person = known_person(session=session, org_id=org_id, person_id=to_id)
    if person is not None and Role(person.role) in CLAIMING_ROLES:
        known.append(person.name)
    if not known:
        return None
    return to_name if to_name in known else known[0]


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
    last_seq = dict(
        session.exec(
            select(LastAssignment.user_id, LastAssignment.event_seq).where(
                LastAssignment.org_id == org_id, col(LastAssignment.user_id).in_(ids)
            )
        ).all()
    )

    def busyness(user_id: str) -> tuple[int, int, str]:
        return claimed.get(user_id, 0), last_seq.get(user_id, 0), user_id  # 0: never

    chosen = min(ids, key=busyness)
    return chosen, candidates[chosen]


def _remember(session: Session, *, org_id: str, user_id: str, seq: int, at: datetime) -> None:
    table = LastAssignment.__table__  # type: ignore[attr-defined]
    insert = dialect_insert(session.connection())
    session.execute(
        insert(table)
        .values(org_id=org_id, user_id=user_id, event_seq=seq, assigned_at=at)
        .on_conflict_do_update(
            index_elements=[table.c.org_id, table.c.user_id],
            set_={"event_seq": seq, "assigned_at": at},
        )
    )
