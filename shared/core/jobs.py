"""The assessment job's life in RQ: enqueue by dotted name with a job id derived
from the handoff id, and tell a live job from a lost or abandoned one.

A job is *live* while it is queued, deferred, scheduled and not long overdue,
or started by a worker that still renews its lease. Enqueueing a handoff with a
live job is a no-op; a finished, failed, abandoned or stalled job is replaced by
a fresh one.
"""

import logging
from datetime import timedelta
from enum import Enum
from typing import Any

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.utils import now as rq_now

from shared.core import keys
from shared.core.request_context import REQUEST_ID
from shared.core.script_batch import call_script
from shared.core.settings import Settings
from shared.core.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

WAITING_STATUSES = {JobStatus.QUEUED, JobStatus.DEFERRED}
#: A running job renews its lease every third of this; see services/worker/lease.py.
LEASE_TTL_SECONDS = 10.0
#: A scheduled retry this far past its time has no mover (every worker's moves due
#: retries each second): the reconciler replaces it instead of waiting forever.
SCHEDULE_GRACE_SECONDS = 30.0


class JobState(Enum):
    LIVE = "live"
    ABANDONED = "abandoned"  # started, but its worker stopped renewing the lease
    STALLED = "stalled"  # scheduled, but long past its time (or in no registry)
    NONE = "none"  # never enqueued, lost with Redis, finished or failed


def enqueue_assessment(redis: Redis, *, handoff_id: str, org_id: str, settings: Settings) -> Job:
    """Enqueue the assessment of one handoff unless a live job for it exists.

    Raises redis' ``RedisError`` when Redis cannot be reached; the caller
    decides whether that is fatal (the reconciler re-enqueues later).
    """
    state, job = assessment_job_state(redis, handoff_id)
    if state is JobState.LIVE and job is not None:
        return job
    if job is not None:
        job.delete()  # so RQ's own clean-up never acts on the stale copy
    return enqueue_new_assessment(redis, handoff_id=handoff_id, org_id=org_id, settings=settings)


def enqueue_new_assessment(
    redis: Redis, *, handoff_id: str, org_id: str, settings: Settings
) -> Job:
    """Enqueue the assessment of a handoff created just now: no job for it can
    exist yet, so none is looked up (``enqueue_assessment`` does), and the job
    is saved and queued in one script call (``NEW_JOB``).

    Raises redis' ``RedisError`` when Redis cannot be reached.
    """
    job, keys_, args = _new_job(redis, handoff_id=handoff_id, org_id=org_id, settings=settings)
    _new_job_script(redis)(keys=keys_, args=args, client=redis)
    return job


def enqueue_created_assessment(
    redis: Redis, *, handoff_id: str, org_id: str, settings: Settings
) -> None:
    """``enqueue_new_assessment`` for a create, through ``call_script``: in the
    request's one round trip when in a ``batched_scripts`` block. Never raises:
    when Redis cannot be reached the handoff is committed all the same, and the
    reconciler enqueues it once Redis is back."""

    def failed(exc: RedisError) -> None:
        log.warning("could not enqueue assessment for %s: %s", handoff_id, exc)

    _job, keys_, args = _new_job(redis, handoff_id=handoff_id, org_id=org_id, settings=settings)
    call_script(redis, _new_job_script(redis), keys=keys_, args=args, done=_ignore, failed=failed)


#: KEYS: the job's hash, the queue, RQ's set of queues. ARGV: the job id, then the
#: hash's field, value pairs (RQ's own ``Job.to_dict``). What ``Queue.enqueue_job``
#: sends for a job without dependencies (``MULTI``, ``SADD``, ``HSET`` of the status,
#: ``HSET`` of the hash, ``RPUSH``, ``EXEC``), as one atomic command: one to pack and
#: one reply to parse where there were six (a third of an enqueue's CPU).
NEW_JOB = """
redis.call('SADD', KEYS[3], KEYS[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return redis.call('RPUSH', KEYS[2], ARGV[1])
"""


def _new_job_script(redis: Redis) -> Script:
    return redis.register_script(NEW_JOB)  # no round trip: the text's SHA, loaded on first use


def _new_job(
    redis: Redis, *, handoff_id: str, org_id: str, settings: Settings
) -> tuple[Job, list[str], list[Any]]:
    """The job as RQ makes it, queued now, and ``NEW_JOB``'s keys and arguments."""
    queue = Queue(keys.ASSESSMENTS_QUEUE, connection=redis)
    job = queue.create_job(
        keys.ASSESS_JOB_FUNC,
        args=(handoff_id,),
        job_id=keys.assessment_job_id(handoff_id),
        description=f"Assess handoff {handoff_id} (org {org_id})",
        meta={"handoff_id": handoff_id, "org_id": org_id, "request_id": REQUEST_ID.get()},
        timeout=settings.assessment_job_timeout_seconds,
        retry=_retry(settings),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        status=JobStatus.QUEUED,
    )
    job.origin = queue.name
    job.enqueued_at = rq_now()
    args: list[Any] = [job.id]
    for name, value in job.to_dict().items():
        args += [name, value]
    return job, [job.key, queue.key, queue.redis_queues_keys], args


def _ignore(_result: Any) -> None:
    pass


def _retry(settings: Settings) -> Retry | None:
    if settings.assessment_retries == 0:
        return None
    return Retry(
        max=settings.assessment_retries, interval=settings.assessment_retry_intervals_seconds
    )


def assessment_job_state(redis: Redis, handoff_id: str) -> tuple[JobState, Job | None]:
    try:
        job = Job.fetch(keys.assessment_job_id(handoff_id), connection=redis)
    except NoSuchJobError:
        return JobState.NONE, None
    status = job.get_status(refresh=False)
    if status in WAITING_STATUSES:
        return JobState.LIVE, job
    if status == JobStatus.SCHEDULED:
        return (JobState.STALLED if _overdue(redis, job) else JobState.LIVE), job
    if status == JobStatus.STARTED:
        return (JobState.ABANDONED if _abandoned(redis, job, handoff_id) else JobState.LIVE), job
    return JobState.NONE, job


def _overdue(redis: Redis, job: Job) -> bool:
    registry = ScheduledJobRegistry(keys.ASSESSMENTS_QUEUE, connection=redis)
    due = redis.zscore(registry.key, job.id)
    if due is None:
        return True  # scheduled, yet in no registry: nothing will ever enqueue it
    return utcnow().timestamp() - due > SCHEDULE_GRACE_SECONDS


def _abandoned(redis: Redis, job: Job, handoff_id: str) -> bool:
    if redis.exists(keys.assessment_lease(handoff_id)):
        return False
    # A job that has just started may not have taken its lease yet.
    started_at = job.started_at or job.enqueued_at or utcnow()
    return utcnow() - as_utc(started_at) > timedelta(seconds=LEASE_TTL_SECONDS)
