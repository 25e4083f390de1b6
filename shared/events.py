"""The event log (outbox): writing an event with its state change, and reading
it back for history and replay."""

import json

from sqlalchemy import Connection, Engine, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from shared.auth import Principal
from shared.db import EVENTS_WRITTEN
from shared.models import Event, EventPublic, EventType, Handoff, HandoffPublic, OrgEventCounter
from shared.request_context import REQUEST_ID
from shared.timeutil import isoformat, utcnow


def record_event(
    session: Session, *, handoff: Handoff, type: EventType, actor: Principal | None
) -> Event:
    """Add the event for ``handoff``'s new state to the session's transaction.

    The caller commits. The per-org counter row stays locked until then, so an
    org's events commit in ``seq`` order and a replay after ``seq`` N never
    misses an event that commits later with a smaller number.
    """
    event = Event(
        org_id=handoff.org_id,
        seq=_next_seq(session, handoff.org_id),
        type=type.value,
        handoff_id=handoff.id,
        actor_id=actor.user_id if actor else None,
        actor_name=actor.name if actor else None,
        at=utcnow(),
        handoff=handoff_public(handoff).model_dump(mode="json"),
        request_id=REQUEST_ID.get(),
    )
    session.add(event)
    session.info[EVENTS_WRITTEN] = True
    return event


def _next_seq(session: Session, org_id: str) -> int:
    bind = session.connection()
    insert = _dialect_insert(bind)
    table = OrgEventCounter.__table__  # type: ignore[attr-defined]
    statement = (
        insert(table)
        .values(org_id=org_id, last_seq=1)
        .on_conflict_do_update(
            index_elements=[table.c.org_id], set_={"last_seq": table.c.last_seq + 1}
        )
        .returning(table.c.last_seq)
    )
    return int(session.execute(statement).scalar_one())


def _dialect_insert(bind: Connection | Engine):
    if bind.dialect.name == "postgresql":
        return postgresql.insert
    if bind.dialect.name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database dialect {bind.dialect.name!r}")


def handoff_public(handoff: Handoff) -> HandoffPublic:
    return HandoffPublic.model_validate(handoff, from_attributes=True)


def event_public(event: Event) -> EventPublic:
    return EventPublic(
        id=event.seq,
        type=EventType(event.type),
        handoff_id=event.handoff_id,
        org_id=event.org_id,
        at=event.at,
        actor_id=event.actor_id,
        actor_name=event.actor_name,
        request_id=event.request_id,
        handoff=HandoffPublic.model_validate(event.handoff),
    )


def handoff_history(session: Session, *, handoff: Handoff) -> list[EventPublic]:
    """A handoff's events, oldest first."""
    statement = (
        select(Event)
        .where(Event.org_id == handoff.org_id, Event.handoff_id == handoff.id)
        .order_by(col(Event.seq))
    )
    return [event_public(event) for event in session.exec(statement)]


def event_json(event: Event) -> str:
    """The event as published and streamed: ``EventPublic``'s JSON, built
    without re-validating the stored handoff (it was validated when written)."""
    return json.dumps(
        {
            "id": event.seq,
            "type": event.type,
            "handoff_id": event.handoff_id,
            "org_id": event.org_id,
            "at": isoformat(event.at),
            "actor_id": event.actor_id,
            "actor_name": event.actor_name,
            "request_id": event.request_id,
            "handoff": event.handoff,
        },
        separators=(",", ":"),
    )


def latest_seq(session: Session, *, org_id: str) -> int:
    """The org's newest event number (0 before its first event)."""
    statement = select(func.max(Event.seq)).where(Event.org_id == org_id)
    return int(session.exec(statement).one() or 0)


def events_after(session: Session, *, org_id: str, after_seq: int, limit: int) -> list[Event]:
    """The org's events with ``seq > after_seq``, oldest first, at most ``limit``."""
    statement = (
        select(Event)
        .where(Event.org_id == org_id, Event.seq > after_seq)
        .order_by(col(Event.seq))
        .limit(limit)
    )
    return list(session.exec(statement))
