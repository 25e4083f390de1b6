"""The RQ job: ``services.worker.tasks.assess_handoff(handoff_id)``.

Load the handoff, run the configured assessor, store the result and its
``handoff_assessment_ready`` event. On the last failed try (RQ retries the
others) the handoff gets ``assessment_status = failed`` and
``handoff_assessment_failed``. A worker killed mid-job is covered by the lease
and the reconciler, not by RQ's callbacks (which never run in that case).
"""

import logging
import time
from datetime import datetime

from rq import get_current_job
from sqlalchemy import Connection

from services.worker.assessors.base import AssessmentRequest, PastResolution
from services.worker.context import WorkerContext, get_context
from services.worker.lease import AssessmentLease, LeaseHeld
from shared.assessments.one_statement import store_if_unchanged
from shared.assessments.service import (
    Attempt,
    Counted,
    ResolvedHandoff,
    attempt_of,
    mark_assessment_failed,
    recent_resolutions,
    start_attempt,
    start_attempt_pipelined,
    store_assessment,
)
from shared.core.db import session_scope
from shared.core.metrics import ASSESSMENT_DURATION, ASSESSMENTS
from shared.core.request_context import REQUEST_ID
from shared.core.timeutil import isoformat, utcnow
from shared.handoffs.models import AssessmentData

log = logging.getLogger(__name__)


def assess_handoff(handoff_id: str) -> str:
    """Returns "ready" or "skipped" (gone, or assessed already); raises on failure."""
    job = get_current_job()
    token = REQUEST_ID.set(job.meta.get("request_id") if job is not None else None)
    try:
        outcome = _assess(handoff_id)
    except LeaseHeld:
        outcome = "skipped"  # a duplicate job: the run holding the lease finishes it
    finally:
        REQUEST_ID.reset(token)
    ASSESSMENTS.labels(outcome).inc()
    return outcome


def _assess(handoff_id: str) -> str:
    context = get_context()
    # One checkout (and so one pool pre-ping) for both steps of the job.
    lease = AssessmentLease(context.redis, handoff_id)
    with lease, context.engine.connect() as connection:
        begun = _start(connection, handoff_id)
        if begun is None:
            return "skipped"
        handoff, resolved, counted = begun
        request = _request_for(handoff, resolved)
        started = time.perf_counter()
        try:
            result = context.assessor.assess(request)
        except Exception:
            _record_failure(context, handoff, time.perf_counter() - started)
            raise
        ASSESSMENT_DURATION.labels("ready").observe(time.perf_counter() - started)
        now = utcnow()
        assessment = AssessmentData(
            summary=result.summary,
            likely_causes=result.likely_causes,
            suggested_steps=result.suggested_steps,
            confidence=result.confidence,
            generator=context.assessor.name,
            generated_at=isoformat(now),
        )
        _store(connection, handoff_id, counted, assessment, now)
        lease.done()
    return "ready"


def _store(
    connection: Connection,
    handoff_id: str,
    counted: Counted | None,
    assessment: AssessmentData,
    now: datetime,
) -> None:
    """On PostgreSQL, while the handoff is as the count left it: one statement
    and its commit, one round trip. Otherwise (SQLite, or the row changed
    meanwhile, e.g. claimed): the session's way, reading the row as it is."""
    if counted is not None and store_if_unchanged(
        connection,
        handoff_id=handoff_id,
        counted=counted,
        assessment=assessment.model_dump(mode="json"),
        now=now,
    ):
        return
    with session_scope(connection) as session:
        store_assessment(session=session, handoff_id=handoff_id, assessment=assessment)


def _start(
    connection: Connection, handoff_id: str
) -> tuple[Attempt, list[ResolvedHandoff], Counted | None] | None:
    """Count the try (committed before the assessor runs, so a try that kills
    the worker still counts) and read the org's memory. On PostgreSQL both go
    out in one round trip (a pipeline), and the row as counted comes back for
    the store."""
    if connection.dialect.name == "postgresql":
        return start_attempt_pipelined(connection, handoff_id)
    with session_scope(connection) as session:
        handoff = start_attempt(session=session, handoff_id=handoff_id)
        if handoff is None:
            return None
        resolved = recent_resolutions(session=session, org_id=handoff.org_id)
        session.commit()  # the try counts from here, even if the assessor kills us
        return attempt_of(handoff), resolved, None


def _record_failure(context: WorkerContext, handoff: Attempt, seconds: float) -> None:
    last = _is_last_try()
    outcome = "failed" if last else "failed_try"
    log.exception("assessment of %s failed (attempt %s)", handoff.id, handoff.assessment_attempts)
    ASSESSMENT_DURATION.labels(outcome).observe(seconds)
    ASSESSMENTS.labels(outcome).inc()
    if last:
        with session_scope(context.engine) as session:
            mark_assessment_failed(session=session, handoff_id=handoff.id)


def _is_last_try() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def _request_for(handoff: Attempt, resolved: list[ResolvedHandoff]) -> AssessmentRequest:
    return AssessmentRequest(
        handoff_id=handoff.id,
        priority=handoff.priority,
        engineer_notes=handoff.engineer_notes,
        snapshot=handoff.snapshot,
        past_resolutions=[_past_resolution(past) for past in resolved if past.id != handoff.id],
    )


def _past_resolution(handoff: ResolvedHandoff) -> PastResolution:
    return PastResolution(
        handoff_id=handoff.id,
        problem_summary=handoff.snapshot.get("problem_summary", ""),
        problem_domain=handoff.problem_domain,
        engineer_notes=handoff.engineer_notes,
        tried_steps=[
            step.get("description", "") for step in handoff.snapshot.get("tried_steps", [])
        ],
        resolution_notes=handoff.resolution_notes or "",
    )
