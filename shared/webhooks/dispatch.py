"""From delivery rows to RQ jobs, and back when a job is lost.

The dispatcher (a thread in every API and worker process, woken after each
commit that wrote events, and every ``POLL_INTERVAL_SECONDS`` for retries
falling due) marks due rows as enqueued and enqueues one job per try on the
``notifications`` queue, never more than the per-org and per-receiver caps
allow in flight (``tries.claim_due``), so the queue stays short and fair.
The job id names the delivery and the try, so a finished try never shadows the
next. The database stays the truth: when Redis
is down the mark is undone and the rows wait; when a job is lost anyway (Redis
restarted empty, a worker killed mid-try) :func:`reconcile_deliveries`, run by
the workers' maintenance pass, makes the row due again.
"""

import contextlib
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from shared.core import keys
from shared.core.db import session_scope
from shared.core.settings import Settings
from shared.core.timeutil import as_utc, utcnow
from shared.webhooks import tries
from shared.webhooks.models import WebhookDelivery

log = logging.getLogger(__name__)

BATCH_SIZE = 200
POLL_INTERVAL_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 5.0
#: A row marked enqueued this long ago whose job is gone has lost it (the mark
#: and the enqueue are a few milliseconds apart).
LOST_JOB_GRACE_SECONDS = 10.0
#: Beyond the try's own deadline, before a started job counts as abandoned.
STARTED_GRACE_SECONDS = 10.0
RESULT_TTL_SECONDS = 3600
FAILURE_TTL_SECONDS = 7 * 24 * 3600


def enqueue_delivery(
    redis: Redis, delivery: WebhookDelivery, *, settings: Settings, at_front: bool = False
) -> Job:
    """Enqueue the next try of ``delivery`` (at the head of the queue with
    ``at_front``). A stale job under the same id (lost, abandoned, finished) is
    replaced. Raises ``RedisError``."""
    attempt = delivery.attempts + 1
    job_id = keys.delivery_job_id(delivery.id, attempt)
    with contextlib.suppress(NoSuchJobError):
        Job.fetch(job_id, connection=redis).delete()
    queue = Queue(keys.NOTIFICATIONS_QUEUE, connection=redis)
    return queue.enqueue(
        keys.DELIVER_JOB_FUNC,
        delivery.id,
        attempt,
        job_id=job_id,
        description=(
            f"Deliver {delivery.event_type} to webhook {delivery.webhook_id}"
            f" (org {delivery.org_id}, delivery {delivery.id}, try {attempt})"
        ),
        meta={
            "delivery_id": delivery.id,
            "webhook_id": delivery.webhook_id,
            "org_id": delivery.org_id,
            "event_type": delivery.event_type,
            "attempt": attempt,
        },
        job_timeout=int(settings.webhook_timeout_seconds) + 5,
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
        at_front=at_front,
    )


def dispatch_due(*, engine: Engine, redis: Redis, settings: Settings) -> int:
    """Enqueue every due delivery; returns how many. Rows whose enqueue failed
    are released for the next pass, and the ``RedisError`` is raised."""
    total = 0
    caps = tries.InFlightCaps.from_settings(settings)
    while True:
        with session_scope(engine) as session:
            claimed = tries.claim_due(session, now=utcnow(), limit=BATCH_SIZE, caps=caps)
        if not claimed:
            return total
        # The try of an org that had none in flight jumps the queue, so a quiet org
        # never waits behind another org's burst (a cap's worth refilled at once).
        # An org's later tries go to the back: its own tries keep their order.
        # It is also enqueued first: a burst's own enqueues (a few round trips each)
        # must not delay it either.
        alone = _alone_in_flight(engine, claimed)
        claimed.sort(key=lambda delivery: delivery.id not in alone)
        for index, delivery in enumerate(claimed):
            try:
                enqueue_delivery(redis, delivery, settings=settings, at_front=delivery.id in alone)
            except RedisError:
                with session_scope(engine) as session:
                    tries.release(session, delivery_ids=[d.id for d in claimed[index:]])
                raise
        total += len(claimed)
        if len(claimed) < BATCH_SIZE:
            return total


def _alone_in_flight(engine: Engine, claimed: list[WebhookDelivery]) -> set[str]:
    """Ids of the claimed deliveries that are their org's only try in flight."""
    per_org = Counter(delivery.org_id for delivery in claimed)
    single = [org_id for org_id, count in per_org.items() if count == 1]
    if not single:
        return set()
    with session_scope(engine) as session:
        in_flight = tries.in_flight_by_org(session, org_ids=single)
    return {d.id for d in claimed if per_org[d.org_id] == 1 and in_flight.get(d.org_id) == 1}


class DeliveryDispatcher:
    """Runs :func:`dispatch_due` on a thread: at once after :meth:`notify`, and
    every ``POLL_INTERVAL_SECONDS``; backs off while Redis or the database is down."""

    def __init__(self, *, engine: Engine, redis: Redis, settings: Settings) -> None:
        self._engine = engine
        self._redis = redis
        self._settings = settings
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """Called after a commit that wrote events (and so maybe deliveries)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        backoff = 0.0
        while not self._stopped.is_set():
            self._wake.wait(backoff or POLL_INTERVAL_SECONDS)
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                dispatch_due(engine=self._engine, redis=self._redis, settings=self._settings)
                backoff = 0.0
            except (RedisError, SQLAlchemyError) as exc:
                backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
                log.warning("webhook dispatcher: %s; retrying in %.1f s", exc, backoff)
            except Exception:  # anything else backs off too: the thread must not end
                backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
                log.exception("webhook dispatcher: pass failed; retrying in %.1f s", backoff)


# --- lost jobs ---------------------------------------------------------------------


@dataclass
class DeliveryReconcileReport:
    checked: int = 0
    requeued: int = 0


def reconcile_deliveries(
    *, engine: Engine, redis: Redis, settings: Settings
) -> DeliveryReconcileReport:
    """Makes due again every pending delivery marked enqueued for a while whose
    job is neither waiting nor running (lost with Redis, or its worker died).
    Raises ``RedisError`` and SQLAlchemy errors."""
    report = DeliveryReconcileReport()
    cutoff = utcnow() - timedelta(seconds=LOST_JOB_GRACE_SECONDS)
    after = ""
    while True:
        with session_scope(engine) as session:
            rows = tries.enqueued_before(session, cutoff=cutoff, after=after, limit=500)
        for row in rows:
            report.checked += 1
            if _try_live(redis, row.id, row.attempts + 1, settings):
                continue
            with session_scope(engine) as session:
                if tries.requeue(session, delivery_id=row.id, enqueued_at=row.enqueued_at):
                    report.requeued += 1
                    log.info("webhook reconciler: delivery %s lost its job; due again", row.id)
        if len(rows) < 500:
            return report
        after = rows[-1].id


def _try_live(redis: Redis, delivery_id: str, attempt: int, settings: Settings) -> bool:
    """The try's job is waiting or running, or a notifications worker's pool is
    sending it (its lease is held: the job itself finished when it handed it over)."""
    if redis.exists(keys.delivery_try_lease(delivery_id, attempt)):
        return True
    try:
        job = Job.fetch(keys.delivery_job_id(delivery_id, attempt), connection=redis)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        return True
    if status != JobStatus.STARTED:
        return False  # finished or failed without recording its try (the row says pending)
    started = as_utc(job.started_at or job.enqueued_at or utcnow())
    limit = settings.webhook_timeout_seconds + STARTED_GRACE_SECONDS
    return utcnow() - started < timedelta(seconds=limit)


def try_reconcile_deliveries(
    *, engine: Engine, redis: Redis, settings: Settings
) -> DeliveryReconcileReport | None:
    """A pass unless another worker holds the lock; None if skipped or Redis is down."""
    ttl_ms = max(int(settings.maintenance_interval_seconds * 900), 100)
    try:
        if not redis.set(keys.DELIVERY_RECONCILER_LOCK, "1", nx=True, px=ttl_ms):
            return None
        return reconcile_deliveries(engine=engine, redis=redis, settings=settings)
    except RedisError as exc:
        log.warning("webhook reconciler: redis unavailable: %s", exc)
        return None
