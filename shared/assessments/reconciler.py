"""Finds handoffs whose assessment is pending with no live job and enqueues
them again: jobs lost with Redis, never enqueued because Redis was down, or
abandoned by a worker that was killed mid-job.

Each worker runs it periodically; a Redis lock lets one pass run at a time.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlmodel import col, select

from shared.assessments.service import mark_assessment_failed
from shared.core import keys
from shared.core.db import session_scope
from shared.core.jobs import JobState, assessment_job_state, enqueue_assessment
from shared.core.settings import Settings
from shared.handoffs.models import AssessmentStatus, Handoff

log = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass
class ReconcileReport:
    checked: int = 0
    enqueued: int = 0
    failed: int = 0


def reconcile_assessments(*, engine: Engine, redis: Redis, settings: Settings) -> ReconcileReport:
    """One pass over every pending assessment, in pages of ``BATCH_SIZE`` by id."""
    report = ReconcileReport()
    for page in _pending_pages(engine):
        report.checked += len(page)
        not_live = {}
        for handoff_id, org_id, attempts in page:
            state, _ = assessment_job_state(redis, handoff_id)
            if state is not JobState.LIVE:
                not_live[handoff_id] = (org_id, attempts, state)
        for handoff_id in _still_pending(engine, list(not_live)):
            org_id, attempts, state = not_live[handoff_id]
            if attempts >= settings.assessment_max_attempts:
                # It keeps dying with its worker: stop feeding it to the workers.
                with session_scope(engine) as session:
                    report.failed += mark_assessment_failed(session=session, handoff_id=handoff_id)
                continue
            enqueue_assessment(redis, handoff_id=handoff_id, org_id=org_id, settings=settings)
            report.enqueued += 1
            log.info("reconciler: re-enqueued assessment of %s (job %s)", handoff_id, state.value)
    return report


def _pending_pages(engine: Engine) -> Iterator[list[tuple[str, str, int]]]:
    after = ""
    while True:
        page = _pending_page(engine, after)
        if page:
            yield page
        if len(page) < BATCH_SIZE:
            return
        after = page[-1][0]


def _still_pending(engine: Engine, handoff_ids: list[str]) -> list[str]:
    """Those of ``handoff_ids`` whose assessment is still pending, read after their
    jobs were. A job commits its assessment before RQ shows it finished, so one
    that finished after the page was read shows ready here; without this second
    read the pass enqueued it again (a duplicate run, skipped, in every pass that
    met a busy worker)."""
    if not handoff_ids:
        return []
    statement = select(Handoff.id).where(
        col(Handoff.id).in_(handoff_ids),
        Handoff.assessment_status == AssessmentStatus.pending.value,
    )
    with session_scope(engine) as session:
        pending = set(session.exec(statement))
    return [handoff_id for handoff_id in handoff_ids if handoff_id in pending]


def _pending_page(engine: Engine, after: str) -> list[tuple[str, str, int]]:
    statement = (
        select(Handoff.id, Handoff.org_id, Handoff.assessment_attempts)
        .where(
            Handoff.assessment_status == AssessmentStatus.pending.value,
            col(Handoff.id) > after,
        )
        .order_by(col(Handoff.id))
        .limit(BATCH_SIZE)
    )
    with session_scope(engine) as session:
        return [tuple(row) for row in session.exec(statement)]  # type: ignore[misc]


def try_reconcile(*, engine: Engine, redis: Redis, settings: Settings) -> ReconcileReport | None:
    """Run a pass unless another worker holds the reconciler lock; None if skipped
    or Redis is unreachable (the next pass tries again)."""
    ttl_ms = int(settings.maintenance_interval_seconds * 1000 * 0.9)
    try:
        if not redis.set(keys.RECONCILER_LOCK, "1", nx=True, px=max(ttl_ms, 100)):
            return None
        return reconcile_assessments(engine=engine, redis=redis, settings=settings)
    except RedisError as exc:
        log.warning("reconciler: redis unavailable: %s", exc)
        return None
