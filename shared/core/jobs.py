"""The assessment job's life in RQ: enqueue by dotted name with a job id derived
from the handoff id, and tell a live job from a lost or abandoned one.

A job is *live* while it is queued, deferred, scheduled and not long overdue,
or started by a worker that still renews its lease. Enqueueing a handoff with a
live job is a no-op; a finished, failed, abandoned or stalled job is replaced by
a fresh one.
"""

import functools
import logging
import zlib
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
from rq.serializers import PickleSerializer
from rq.utils import now as rq_now
from rq.utils import utcformat

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
    is saved and queued in one MULTI/EXEC round trip (``Queue.enqueue`` takes two).

    Raises redis' ``RedisError`` when Redis cannot be reached.
    """
    queue = Queue(keys.ASSESSMENTS_QUEUE, connection=redis)
    job = queue.create_job(
        keys.ASSESS_JOB_FUNC,
        args=(handoff_id,),
        job_id=keys.assessment_job_id(handoff_id),
        description=_description(handoff_id, org_id),
        meta=_meta(handoff_id, org_id),
        timeout=settings.assessment_job_timeout_seconds,
        retry=_retry(settings.assessment_retries, settings.assessment_retry_intervals_seconds),
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
        status=JobStatus.QUEUED,
    )
    with redis.pipeline() as pipe:
        queue.enqueue_job(job, pipeline=pipe)
        pipe.execute()
    return job


def enqueue_created_assessment(
    redis: Redis, *, handoff_id: str, org_id: str, settings: Settings
) -> None:
    """What ``enqueue_new_assessment`` writes, for a create: one script call
    (``_new_job_script``), through ``call_script``, so in the request's one
    round trip when in a ``batched_scripts`` block. Never raises: when Redis
    cannot be reached the handoff is committed all the same, and the reconciler
    enqueues it once Redis is back."""

    def failed(exc: RedisError) -> None:
        log.warning("could not enqueue assessment for %s: %s", handoff_id, exc)

    job_id = keys.assessment_job_id(handoff_id)
    at = utcformat(rq_now())
    # What ``Job.data`` pickles: the function, no instance, the arguments, no keywords.
    job_data: tuple[Any, ...] = (keys.ASSESS_JOB_FUNC, None, (handoff_id,), {})
    call_script(
        redis,
        _new_job_script(_configuration(settings)),
        keys=[Job.key_for(job_id), _QUEUE_KEY, Queue.redis_queues_keys],
        args=[
            job_id,
            at,  # created_at
            at,  # enqueued_at
            zlib.compress(PickleSerializer.dumps(job_data)),
            _description(handoff_id, org_id),
            PickleSerializer.dumps(_meta(handoff_id, org_id)),
        ],
        done=_ignore,
        failed=failed,
    )


RESULT_TTL_SECONDS = 3600
_QUEUE_KEY = Queue(keys.ASSESSMENTS_QUEUE, connection=Redis()).key  # no connection is made
FAILURE_TTL_SECONDS = 7 * 24 * 3600
#: The fields of a new job's hash that are its own (``enqueue_created_assessment``'s
#: arguments, in this order); RQ gives every other field the same value in every
#: assessment job of one configuration.
_OWN_FIELDS = ("created_at", "enqueued_at", "data", "description", "meta")


def _description(handoff_id: str, org_id: str) -> str:
    return f"Assess handoff {handoff_id} (org {org_id})"


def _meta(handoff_id: str, org_id: str) -> dict[str, Any]:
    return {"handoff_id": handoff_id, "org_id": org_id, "request_id": REQUEST_ID.get()}


def _configuration(settings: Settings) -> tuple[int, int, tuple[int, ...]]:
    return (
        settings.assessment_job_timeout_seconds,
        settings.assessment_retries,
        tuple(settings.assessment_retry_intervals_seconds),
    )


@functools.lru_cache(maxsize=8)
def _new_job_script(configuration: tuple[int, int, tuple[int, ...]]) -> Script:
    """What ``Queue.enqueue_job`` sends for a new assessment job (``MULTI``,
    ``SADD`` of the queue to RQ's set of queues, ``HSET`` of the status, ``HSET``
    of ``Job.to_dict``, ``RPUSH``, ``EXEC``) as one atomic script. The fields
    every job of ``configuration`` shares are written into its text, taken from
    a job RQ makes once; ARGV: the job id, then ``_OWN_FIELDS``' values. One
    command of six arguments to pack where there were six of 48, and no
    ``Job`` built per create (56 µs of CPU). Kept as a ``Script`` (its SHA-1 of a
    long text was 1 % of a create's samples); ``call_script`` names the client."""
    timeout, retries, intervals = configuration
    prototype = Queue(keys.ASSESSMENTS_QUEUE, connection=Redis()).create_job(
        keys.ASSESS_JOB_FUNC,
        timeout=timeout,
        retry=_retry(retries, list(intervals)),
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
        status=JobStatus.QUEUED,
    )
    prototype.origin = keys.ASSESSMENTS_QUEUE
    fields = prototype.to_dict()
    pairs = [(_lua(name), _lua(value)) for name, value in fields.items() if name not in _OWN_FIELDS]
    pairs += [(_lua(name), f"ARGV[{i}]") for i, name in enumerate(_OWN_FIELDS, start=2)]
    hset = ", ".join(f"{name}, {value}" for name, value in pairs)
    text = (
        "redis.call('SADD', KEYS[3], KEYS[2])\n"
        f"redis.call('HSET', KEYS[1], {hset})\n"
        "return redis.call('RPUSH', KEYS[2], ARGV[1])\n"
    )
    return Script(Redis(), text)  # no connection is made


def _lua(value: str | bytes | int) -> str:
    """``value`` as a Lua string literal of the bytes redis-py would send for it
    (a ``str`` enum as its value, a number as its ``repr``), every byte but
    letters, digits and ``_`` escaped (three digits: ``\\ddd``)."""
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        raw = value.encode()
    else:
        raw = repr(value).encode()
    return "'" + "".join(_LUA_BYTES[byte] for byte in raw) + "'"


_LUA_BYTES = [
    chr(byte)
    if chr(byte).isascii() and (chr(byte).isalnum() or chr(byte) == "_")
    else f"\\{byte:03d}"
    for byte in range(256)
]


def _ignore(_result: Any) -> None:
    pass


def _retry(retries: int, intervals: list[int]) -> Retry | None:
    return None if retries == 0 else Retry(max=retries, interval=intervals)


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
