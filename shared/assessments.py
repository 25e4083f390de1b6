"""Assessment state on a handoff: count a try, store a result, record a
failure, and let a senior ask for another try.

Storing is an upsert keyed by handoff, so a re-run is harmless, and each
event is written only on the transition it names (one ``ready``, one
``failed``), in the same transaction as the change.
"""

from sqlmodel import Session, col, select

from shared.auth import Principal
from shared.errors import Conflict, handoff_not_found
from shared.handoff_views import handoff_public
from shared.models import (
    AssessmentData,
    AssessmentStatus,
    EventType,
    Handoff,
    HandoffPublic,
    HandoffStatus,
)
from shared.outbox import record_event
from shared.timeutil import utcnow

PAST_RESOLUTIONS_LIMIT = 200


def begin_attempt(*, session: Session, handoff_id: str) -> Handoff | None:
    """Count a started try. None when there is nothing to do: the handoff is
    gone or its assessment is already ready."""
    handoff = _locked(session, handoff_id)
    if handoff is None or handoff.assessment_status == AssessmentStatus.ready:
        session.rollback()
        return None
    handoff.assessment_attempts += 1
    session.add(handoff)
    session.commit()
    return handoff


def recent_resolutions(*, session: Session, org_id: str) -> list[Handoff]:
    """The org's most recently resolved handoffs, the assessor's memory."""
    statement = (
        select(Handoff)
        .where(Handoff.org_id == org_id, Handoff.status == HandoffStatus.resolved.value)
        .order_by(col(Handoff.resolved_at).desc())
        .limit(PAST_RESOLUTIONS_LIMIT)
    )
    return list(session.exec(statement))


def store_assessment(*, session: Session, handoff_id: str, assessment: AssessmentData) -> bool:
    """Upsert the assessment. Writes ``handoff_assessment_ready`` only when the
    status becomes ready. False when the handoff no longer exists."""
    handoff = _locked(session, handoff_id)
    if handoff is None:
        session.rollback()
        return False
    became_ready = handoff.assessment_status != AssessmentStatus.ready
    handoff.ai_assessment_data = assessment.model_dump(mode="json")
    handoff.assessment_status = AssessmentStatus.ready.value
    handoff.updated_at = utcnow()
    session.add(handoff)
    session.flush()
    if became_ready:
        record_event(session, handoff=handoff, type=EventType.assessment_ready, actor=None)
    session.commit()
    return True


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
