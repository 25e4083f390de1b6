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

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from shared.core.db import rows_changed, session_scope
from shared.core.timeutil import utcnow
from shared.events.models import EventType
from shared.events.outbox import record_event
from shared.handoffs.models import Handoff

BATCH_SIZE = 500


def sweep_sla_breaches(*, engine: Engine, now: datetime | None = None) -> int:
    """Record the breaches due by ``now``; returns how many this call recorded."""
    return sweep_due(engine=engine, now=now or utcnow(), due=_due, act=_record_breach)


def sweep_due(
    *,
    engine: Engine,
    now: datetime,
    due: Callable[[Session, datetime], list[str]],
    act: Callable[[Session, str, datetime], int],
) -> int:
    """The stored-deadline sweep that the claim SLA and re-escalation share: read the
    ids ``due`` by ``now`` in one short transaction, then ``act`` on each in a
    transaction of its own (a conditional update, so concurrent sweeps in several
    workers act once). Returns how many events the ``act`` calls recorded."""
    with session_scope(engine) as session:
        handoff_ids = due(session, now)
    recorded = 0
    for handoff_id in handoff_ids:
        with session_scope(engine) as session:
            recorded += act(session, handoff_id, now)
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
