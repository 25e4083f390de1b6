"""The event log read back: an event's public shape and JSON, a handoff's
history, and replay. Writing and relaying events: ``shared.outbox``."""

import json
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, LargeBinary, Text, cast, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from shared.core.timeutil import isoformat
from shared.events.models import Event, EventData, EventPublic, EventType
from shared.handoffs.models import Handoff, HandoffSummary
from shared.handoffs.views import stored_summary, stored_summary_json


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
        data=EventData.model_validate(event.data) if event.data is not None else None,
        handoff=HandoffSummary.model_validate(event.handoff),
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
    without re-validating the stored handoff (it was validated when written);
    a full handoff stored before events were slim is slimmed."""
    handoff = stored_summary(event.handoff)
    return _splice(event_head_json(event), json.dumps(handoff, separators=(",", ":")))


def new_event_json(
    *,
    seq: int,
    type: str,
    handoff_id: str,
    org_id: str,
    at: datetime,
    actor_id: str | None,
    actor_name: str | None,
    request_id: str | None,
    handoff: dict[str, Any],
) -> str:
    """:func:`event_json` of an event written without an ``Event`` instance
    (without ``data``), from its values and its stored handoff."""
    head = SimpleNamespace(
        seq=seq,
        type=type,
        handoff_id=handoff_id,
        org_id=org_id,
        at=at,
        actor_id=actor_id,
        actor_name=actor_name,
        request_id=request_id,
        data=None,
    )
    return _splice(event_head_json(head), json.dumps(handoff, separators=(",", ":")))


def event_head_json(event: Any) -> str:
    """The JSON object of ``event`` (an ``Event`` or a row with its columns),
    without its ``handoff`` and without the closing brace."""
    head = json.dumps(
        {
            "id": event.seq,
            "type": event.type,
            "handoff_id": event.handoff_id,
            "org_id": event.org_id,
            "at": isoformat(event.at),
            "actor_id": event.actor_id,
            "actor_name": event.actor_name,
            "request_id": event.request_id,
            "data": event.data,
        },
        separators=(",", ":"),
    )
    return head[:-1]


def _splice(head: str, handoff_json: str) -> str:
    return f'{head},"handoff":{handoff_json}}}'


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    """An event read for replay: its number, type, and JSON as :func:`event_json`
    shapes it, with the stored handoff JSON spliced in as stored (decoded only
    to slim a full handoff stored before events were slim)."""

    seq: int
    type: str
    json: str


@dataclass(frozen=True, slots=True)
class ReplayPage:
    events: list[ReplayEvent]
    more: bool  # there may be further events after the last one


def replay_page(
    session: Session, *, org_id: str, after_seq: int, max_bytes: int, max_events: int
) -> ReplayPage:
    """The org's events after ``after_seq``, oldest first: the first event, then
    as many more as keep the stored handoff JSON within ``max_bytes`` in all, at
    most ``max_events``. Sizes are read first (the database measures them), so a
    page never holds more than ``max_bytes`` of payload unless one event is larger
    on its own (an old event's full handoff counts at its stored size, though it
    goes out slimmed). Events never change once committed, and later ones have larger
    ``seq``, so the two reads agree."""
    sizes = replay_sizes(session, org_id=org_id, after_seq=after_seq, limit=max_events)
    total, taken = 0, 0
    for _, size in sizes:
        if taken and total + size > max_bytes:
            break
        total, taken = total + size, taken + 1
    if not taken:
        return ReplayPage([], more=False)
    events = replay_events(
        session, org_id=org_id, after_seq=after_seq, through_seq=sizes[taken - 1][0]
    )
    return ReplayPage(events, more=taken < len(sizes) or len(sizes) == max_events)


def replay_sizes(
    session: Session, *, org_id: str, after_seq: int, limit: int
) -> list[tuple[int, int]]:
    """``(seq, bytes of stored handoff JSON)`` of the next ``limit`` events after
    ``after_seq``; the payloads themselves are not read out."""
    connection = session.connection()
    statement = (
        sa_select(col(Event.seq), _stored_json_bytes(connection, col(Event.handoff)))
        .where(col(Event.org_id) == org_id, col(Event.seq) > after_seq)
        .order_by(col(Event.seq))
        .limit(limit)
    )
    return [(int(seq), int(length or 0)) for seq, length in connection.execute(statement)]


def replay_events(
    session: Session, *, org_id: str, after_seq: int, through_seq: int
) -> list[ReplayEvent]:
    """The org's events with ``after_seq < seq <= through_seq``, oldest first."""
    statement = (
        sa_select(col(Event.seq), *wire_columns())
        .where(
            col(Event.org_id) == org_id, col(Event.seq) > after_seq, col(Event.seq) <= through_seq
        )
        .order_by(col(Event.seq))
    )
    return [
        ReplayEvent(row.seq, row.type, row_json(row))
        for row in session.connection().execute(statement)
    ]


def wire_columns() -> tuple[Any, ...]:
    """The columns :func:`row_json` needs besides ``seq``; the stored handoff
    JSON is read as text and spliced in, never decoded."""
    return (
        col(Event.type),
        col(Event.handoff_id),
        col(Event.org_id),
        col(Event.at),
        col(Event.actor_id),
        col(Event.actor_name),
        col(Event.request_id),
        col(Event.data),
        cast(col(Event.handoff), Text).label("handoff_json"),
    )


def row_json(row: Any) -> str:
    """:func:`event_json` of a row with the event's columns and its stored
    handoff JSON as text (``handoff_json``), spliced in without decoding (unless
    it is a full handoff stored before events were slim: that is slimmed)."""
    return _splice(event_head_json(row), _one_line(stored_summary_json(row.handoff_json)))


def _stored_json_bytes(connection: Connection, column: Any) -> Any:
    as_text = cast(column, Text)
    if connection.dialect.name == "postgresql":
        return func.octet_length(as_text)
    return func.length(cast(as_text, LargeBinary))  # SQLite: a blob's length is in bytes


def _one_line(stored: str) -> str:
    """Stored JSON as one SSE ``data:`` line (the serializer writes one line; a
    newline can only be whitespace between tokens, so re-encode if there is one)."""
    if "\n" in stored or "\r" in stored:
        return json.dumps(json.loads(stored), separators=(",", ":"))
    return stored


def latest_seq(session: Session, *, org_id: str) -> int:
    """The org's newest event number (0 before its first event)."""
    statement = select(func.max(Event.seq)).where(Event.org_id == org_id)
    return int(session.exec(statement).one() or 0)
