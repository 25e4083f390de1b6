"""Retention settings per org, and the purge of one closed handoff's content.

A purge empties what people typed while troubleshooting: the snapshot's
transcript and tried steps, the engineer and resolution notes, and the notes of
reassignments. It keeps the row, its status, times, levels, assessment and every
column analytics read, and sets ``purged_at``. The handoff's stored events carry
copies of that text (their ``handoff`` payload, a reassignment's note), and so
does an idempotent create's stored answer: the purge empties those copies in
the same transaction. It runs once per handoff whoever asks: the update is
conditional on ``purged_at IS NULL``, and only the caller whose update took
the row touches the copies.
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from shared import audit
from shared.auth.tokens import Principal
from shared.core.errors import invalid_state
from shared.core.settings import Settings
from shared.core.timeutil import isoformat, utcnow
from shared.events.models import Event
from shared.handoffs.models import Handoff, HandoffStatus, IdempotencyRecord
from shared.retention.models import OrgRetention, RetentionBody, RetentionPublic

CLOSED = (HandoffStatus.resolved.value, HandoffStatus.cancelled.value)


def get_retention(*, session: Session, org_id: str, settings: Settings) -> RetentionPublic:
    row = session.get(OrgRetention, org_id)
    if row is None:
        return RetentionPublic(**defaults(settings), is_default=True, updated_at=None)
    return _public(row)


def put_retention(
    *, session: Session, actor: Principal, body: RetentionBody, settings: Settings
) -> RetentionPublic:
    org_id = actor.org_id
    before = get_retention(session=session, org_id=org_id, settings=settings)
    row = session.get(OrgRetention, org_id)
    if row is None:
        row = OrgRetention(org_id=org_id, **body.model_dump(), updated_at=utcnow())
    else:
        row.sqlmodel_update({**body.model_dump(), "updated_at": utcnow()})
    session.add(row)
    after = _public(row)
    audit.record(
        session, org_id=org_id, actor=actor, kind="retention.updated", before=before, after=after
    )
    session.commit()
    return after


def defaults(settings: Settings) -> dict[str, int]:
    """The configured days for an org without settings of its own."""
    return {
        "handoff_content_days": settings.retention_handoff_content_days,
        "event_days": settings.retention_event_days,
        "delivery_days": settings.retention_delivery_days,
    }


def _public(row: OrgRetention) -> RetentionPublic:
    return RetentionPublic(
        handoff_content_days=row.handoff_content_days,
        event_days=row.event_days,
        delivery_days=row.delivery_days,
        is_default=False,
        updated_at=row.updated_at,
    )


def purge_now(*, session: Session, actor: Principal, handoff: Handoff) -> None:
    """An admin's purge of one handoff, committed with its audit row. Raises
    ``Conflict`` (``invalid_state``) while it is open; purging again is a no-op."""
    if handoff.status not in CLOSED:
        raise invalid_state("purge", handoff.status)
    if purge_content(session=session, handoff_id=handoff.id, snapshot=handoff.snapshot):
        audit.record(
            session, org_id=handoff.org_id, actor=actor, kind="handoff.purged", target_id=handoff.id
        )
    session.commit()


def purge_content(*, session: Session, handoff_id: str, snapshot: dict[str, Any]) -> bool:
    """Purge a closed handoff's content in the caller's transaction (not committed).
    ``snapshot`` is the stored snapshot as read. Returns False (and changes
    nothing) when it was purged already or is not closed."""
    now = utcnow()
    taken = session.execute(
        sa.update(Handoff)
        .where(
            col(Handoff.id) == handoff_id,
            col(Handoff.purged_at).is_(None),
            col(Handoff.status).in_(CLOSED),
        )
        .values(
            snapshot=purged_snapshot(snapshot),
            engineer_notes="",
            resolution_notes=None,
            purged_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return False
    _purge_copies(session, handoff_id, purged_at=now)
    return True


def purged_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    """``snapshot`` without its transcript and tried steps (``step_count`` stays).
    A copy without them (an event's slim snapshot, ``SnapshotSummary``) stays as it is."""
    purged = dict(snapshot)
    for key, empty in (("tried_steps", []), ("transcript", None)):
        if key in purged:
            purged[key] = empty
    return purged


def purged_handoff(handoff: dict[str, Any], *, purged_at: datetime) -> dict[str, Any]:
    """A stored copy of a handoff (an event's payload, an idempotent answer),
    purged like the row; keys it lacks stay absent."""
    copy = dict(handoff)
    if isinstance(copy.get("snapshot"), dict):
        copy["snapshot"] = purged_snapshot(copy["snapshot"])
    for key, empty in (("engineer_notes", ""), ("resolution_notes", None)):
        if key in copy:
            copy[key] = empty
    copy["purged_at"] = isoformat(purged_at)
    return copy


def _purge_copies(session: Session, handoff_id: str, *, purged_at: datetime) -> None:
    events = session.exec(select(Event).where(col(Event.handoff_id) == handoff_id)).all()
    for event in events:
        event.handoff = purged_handoff(event.handoff, purged_at=purged_at)
        reassignment = (event.data or {}).get("reassignment")
        if isinstance(reassignment, dict) and reassignment.get("note"):
            event.data = {**(event.data or {}), "reassignment": {**reassignment, "note": ""}}
        session.add(event)
    records = session.exec(
        select(IdempotencyRecord).where(col(IdempotencyRecord.handoff_id) == handoff_id)
    ).all()
    for record in records:
        record.response = purged_handoff(record.response, purged_at=purged_at)
        session.add(record)
