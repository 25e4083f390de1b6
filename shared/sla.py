"""The claim SLA: a handoff still unclaimed at its ``claim_deadline_at`` gets
exactly one ``handoff_sla_breached`` event.

The deadline is stored with the handoff, so the sweep can run anywhere and
late (after every process restarted) and still judge correctly: a handoff
breaches when its first claim, or its cancellation, came after the deadline
or has not come at all. Marking ``sla_breached_at`` is a conditional update,
so concurrent sweeps in several workers still write one event per handoff.
A claim or cancel in time sets ``sla_settled_at`` itself, so the sweep's
partial index holds only the questions still open.
"""

from datetime import datetime

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from shared.db import rows_changed, session_scope
from shared.events import record_event
from shared.models import EventType, Handoff
from shared.timeutil import utcnow

BATCH_SIZE = 500


def sweep_sla_breaches(*, engine: Engine, now: datetime | None = None) -> int:
    """Record the breaches due by ``now``; returns how many this call recorded."""
    now = now or utcnow()
    with session_scope(engine) as session:
        due = _due(session, now)
    recorded = 0
    for handoff_id in due:
        with session_scope(engine) as session:
            recorded += _record_breach(session, handoff_id, now)
    return recorded


def _due(session: Session, now: datetime) -> list[str]:
    deadline = col(Handoff.claim_deadline_at)
    statement = (
        select(Handoff.id)
        .where(
            col(Handoff.sla_settled_at).is_(None),
            deadline <= now,
            or_(col(Handoff.first_claimed_at).is_(None), col(Handoff.first_claimed_at) > deadline),
            or_(col(Handoff.cancelled_at).is_(None), col(Handoff.cancelled_at) > deadline),
        )
        .order_by(deadline)
        .limit(BATCH_SIZE)
    )
    return list(session.exec(statement))


def _record_breach(session: Session, handoff_id: str, now: datetime) -> int:
    marked = session.execute(
        update(Handoff)
        .where(col(Handoff.id) == handoff_id, col(Handoff.sla_settled_at).is_(None))
        .values(sla_breached_at=now, sla_settled_at=now)
    )
    if rows_changed(marked) != 1:
        session.rollback()  # another sweep got there first
        return 0
    handoff = session.exec(
        select(Handoff).where(Handoff.id == handoff_id).execution_options(populate_existing=True)
    ).one()
    record_event(session, handoff=handoff, type=EventType.sla_breached, actor=None)
    session.commit()
    return 1
