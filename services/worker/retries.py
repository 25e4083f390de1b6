"""Moves assessment retries whose back-off is over from RQ's scheduled registry
to the queue, on a thread of every worker process.

This replaces RQ's own scheduler, a forked child process that failed in two
ways: it died on a Redis error and was not started again while its 61-second
lock outlived it (retries stalled for ten minutes or more after a Redis
restart), and a ``kill -9`` of the worker left it running, re-parented to PID 1,
holding that lock. A thread ends with its process and outlives an outage: a
pass that fails on Redis is simply tried again on the next tick.
"""

import logging
import threading

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.utils import current_timestamp

from shared.core import keys

log = logging.getLogger(__name__)

#: How often each worker looks for due retries: a retry runs at most this late.
INTERVAL_SECONDS = 1.0


def move_due_retries(redis: Redis, *, interval: float = INTERVAL_SECONDS) -> int:
    """Enqueue every scheduled assessment job that is due; returns how many.

    One worker moves per ``interval`` (a lock that expires just before the next
    tick, so a killed mover holds nobody up); registry removal and enqueue are one
    MULTI, so a job is never in both places or in neither. Raises ``RedisError``.
    """
    if not redis.set(keys.RETRY_MOVER_LOCK, "1", nx=True, px=max(int(interval * 900), 1)):
        return 0
    registry = ScheduledJobRegistry(keys.ASSESSMENTS_QUEUE, connection=redis)
    job_ids = registry.get_jobs_to_schedule(current_timestamp())
    if not job_ids:
        return 0
    queue = Queue(keys.ASSESSMENTS_QUEUE, connection=redis)
    with redis.pipeline() as pipeline:
        for job in Job.fetch_many(job_ids, connection=redis):
            if job is not None:
                queue._enqueue_job(job, pipeline=pipeline)  # what RQ's scheduler does
        for job_id in job_ids:
            registry.remove(job_id, pipeline=pipeline)
        pipeline.execute()
    return len(job_ids)


class DueRetryMover(threading.Thread):
    """Calls :func:`move_due_retries` every ``interval`` seconds until stopped."""

    def __init__(self, redis: Redis, *, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__(name="retry-mover", daemon=True)
        self._redis = redis
        self._interval = interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                moved = move_due_retries(self._redis, interval=self._interval)
            except RedisError as exc:
                log.debug("retry mover: redis unavailable: %s", exc)
                continue
            except Exception:  # whatever a pass hits, the next tick tries again
                log.exception("retry mover: pass failed")
                continue
            if moved:
                log.info("retry mover: %d due assessment retries enqueued", moved)

    def stop(self) -> None:
        self._stopped.set()
