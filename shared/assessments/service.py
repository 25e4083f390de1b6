"""Assessment state on a handoff: count a try, store a result, record a
failure, and let a senior ask for another try.

Storing is an upsert keyed by handoff, so a re-run is harmless, and each
event is written only on the transition it names (one ``ready``, one
``failed``), in the same transaction as the change.

The worker's path (count the try, read the org's memory, store) is a few
statements each: an ``UPDATE … RETURNING`` both locks and changes the row,
so no ``SELECT … FOR UPDATE`` goes before it. Those updates are built once
(building one cost more than running it) and skip the ORM's session
synchronization (the worker's session holds no other handoff to refresh).
"""

import functools
from typing import Any, NamedTuple

from sqlalchemy import bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from shared.auth.tokens import Principal
from shared.core.errors import Conflict, handoff_not_found
from shared.core.timeutil import utcnow
from shared.events.models import EventType
from shared.events.outbox import record_event
from shared.handoffs.models import (
    AssessmentData,
    AssessmentStatus,
    Handoff,
    HandoffPublic,
    HandoffStatus,
)
from shared.handoffs.views import handoff_public

PAST_RESOLUTIONS_LIMIT = 200
_READY = AssessmentStatus.ready.value


class ResolvedHandoff(NamedTuple):
    """What the assessor's memory reads of a resolved handoff (not the whole row)."""

    id: str
    snapshot: dict[str, Any]
    problem_domain: str
    engineer_notes: str
    resolution_notes: str | None


def begin_attempt(*, session: Session, handoff_id: str) -> Handoff | None:
    """Count a started try and commit it. None when there is nothing to do: the
    handoff is gone or its assessment is already ready."""
    handoff = start_attempt(session=session, handoff_id=handoff_id)
    if handoff is None:
        session.rollback()
        return None
    session.commit()
    return handoff


def start_attempt(*, session: Session, handoff_id: str) -> Handoff | None:
    """Count a started try in the session's transaction (the caller commits it,
    before the assessor runs, so a try that kills its worker still counts). None
    when the handoff is gone or its assessment is already ready."""
    return session.execute(_count_try(), {"handoff_id": handoff_id}).scalars().first()


@functools.cache
def _count_try() -> Any:
    return (
        update(Handoff)
        .where(col(Handoff.id) == bindparam("handoff_id"), col(Handoff.assessment_status) != _READY)
        .values(assessment_attempts=col(Handoff.assessment_attempts) + 1)
        .returning(Handoff)
        .execution_options(synchronize_session=False)
    )


def recent_resolutions(*, session: Session, org_id: str) -> list[ResolvedHandoff]:
    """The org's most recently resolved handoffs, the assessor's memory."""
    statement = (
        sa_select(
            col(Handoff.id),
            col(Handoff.snapshot),
            col(Handoff.problem_domain),
            col(Handoff.engineer_notes),
            col(Handoff.resolution_notes),
        )
        .where(col(Handoff.org_id) == org_id, col(Handoff.status) == HandoffStatus.resolved.value)
        .order_by(col(Handoff.resolved_at).desc())
        .limit(PAST_RESOLUTIONS_LIMIT)
    )
    return [ResolvedHandoff(*row) for row in session.execute(statement)]


def store_assessment(*, session: Session, handoff_id: str, assessment: AssessmentData) -> bool:
    """Upsert the assessment. Writes ``handoff_assessment_ready`` only when the
    status becomes ready. False when the handoff no longer exists."""
    values = {
        "handoff_id": handoff_id,
        "assessment": assessment.model_dump(mode="json"),
        "updated_at": utcnow(),
    }
    handoff = _store(session, values, unless_ready=True)
    became_ready = handoff is not None
    if handoff is None:  # gone, or a re-run of a ready assessment: overwrite, no event
        handoff = _store(session, values, unless_ready=False)
    if handoff is None:
        session.rollback()
        return False
    if became_ready:
        record_event(session, handoff=handoff, type=EventType.assessment_ready, actor=None)
    session.commit()
    return True


def _store(session: Session, values: dict[str, Any], *, unless_ready: bool) -> Handoff | None:
    """Store the assessment on one handoff and return the handoff as it now is
    (locked until the commit). With ``unless_ready``, only when its assessment
    is not ready yet: the transition to ready is decided by the row lock, not by
    an earlier read."""
    return session.execute(_store_statement(unless_ready), values).scalars().first()


@functools.cache
def _store_statement(unless_ready: bool) -> Any:
    table = Handoff.__table__  # type: ignore[attr-defined]
    statement = update(Handoff).where(col(Handoff.id) == bindparam("handoff_id"))
    if unless_ready:
        statement = statement.where(col(Handoff.assessment_status) != _READY)
    return (
        statement.values(
            ai_assessment_data=bindparam("assessment", type_=table.c.ai_assessment_data.type),
            assessment_status=_READY,
            updated_at=bindparam("updated_at", type_=table.c.updated_at.type),
        )
        .returning(Handoff)
        .execution_options(synchronize_session=False)
    )


def mark_assessment_failed(*, session: Session, handoff_id: str) -> bool:
    """Record the final failure once. False when there was nothing to change
    (gone, already failed, or ready after all)."""
    handoff = _locked(session, handoff_id)
    if handoff is None or handoff.assessment_status != AssessmentStatus.pending:
        session.rollback()
        return False
    handoff.assessment_status = AssessmentStatus.failed.value
    handoff.updated_at = utcnow()
    session.add(handoff)
    session.flush()
    record_event(session, handoff=handoff, type=EventType.assessment_failed, actor=None)
    session.commit()
    return True


def reopen_assessment(
    *, session: Session, principal: Principal, handoff_id: str, job_is_live: bool
) -> HandoffPublic:
    """Set a failed (or lost) assessment back to pending so it can be enqueued
    again. Raises ``Conflict`` when it is ready or a job is still running."""
    handoff = _locked(session, handoff_id, org_id=principal.org_id)
    if handoff is None:
        raise handoff_not_found(handoff_id)
    if handoff.assessment_status == AssessmentStatus.ready:
        raise Conflict("The assessment is already ready.", code="assessment_ready")
    if job_is_live:
        raise Conflict("The assessment is already running.", code="assessment_running")
    handoff.assessment_status = AssessmentStatus.pending.value
    handoff.assessment_attempts = 0
    handoff.updated_at = utcnow()
    session.add(handoff)
    session.commit()
    return handoff_public(handoff)


def _locked(session: Session, handoff_id: str, *, org_id: str | None = None) -> Handoff | None:
    statement = select(Handoff).where(Handoff.id == handoff_id)
    if org_id is not None:
        statement = statement.where(Handoff.org_id == org_id)
    statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.exec(statement).first()
