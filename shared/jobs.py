"""Enqueueing the assessment job: by dotted name, with a job id derived from
the handoff id, so enqueueing a handoff that already has a live job is a no-op."""

import logging

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from shared import keys
from shared.settings import Settings

log = logging.getLogger(__name__)

LIVE_JOB_STATUSES = {
    JobStatus.QUEUED,
    JobStatus.STARTED,
    JobStatus.DEFERRED,
    JobStatus.SCHEDULED,
}
RETRY_INTERVALS_SECONDS = [5, 20, 60]


def enqueue_assessment(
    redis: Redis, *, handoff_id: str, org_id: str, settings: Settings
) -> Job:
    """Enqueue the assessment of one handoff unless a live job for it exists.

    Raises redis' ``RedisError`` when Redis cannot be reached; the caller
    decides whether that is fatal (the reconciler re-enqueues later).
    """
    job_id = keys.assessment_job_id(handoff_id)
    existing = _live_job(redis, job_id)
    if existing is not None:
        return existing
    queue = Queue(keys.ASSESSMENTS_QUEUE, connection=redis)
    return queue.enqueue(
        keys.ASSESS_JOB_FUNC,
        handoff_id,
        job_id=job_id,
        description=f"Assess handoff {handoff_id} (org {org_id})",
        meta={"handoff_id": handoff_id, "org_id": org_id},
        job_timeout=settings.assessment_job_timeout_seconds,
        retry=_retry(settings.assessment_retries),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
    )


def _retry(retries: int) -> Retry | None:
    if retries == 0:
        return None
    return Retry(max=retries, interval=RETRY_INTERVALS_SECONDS[:retries])


def _live_job(redis: Redis, job_id: str) -> Job | None:
    try:
        job = Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return None
    return job if job.get_status(refresh=False) in LIVE_JOB_STATUSES else None
