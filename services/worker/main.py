"""The worker process: an RQ worker on the ``assessments`` and ``notifications``
queues (assessments first; ``--queues`` picks one pool or both), a pool of
webhook-try threads when it serves ``notifications``
(services/worker/delivery_pool.py), plus four background threads: the due-retry mover
(assessment retries with back-off; it replaces RQ's forked scheduler, see
services/worker/retries.py), periodic maintenance (reconcilers, claim SLA),
the outbox relay that publishes the events jobs commit, and the webhook
dispatcher that enqueues due deliveries. The process has no child process of
its own."""

import logging
import threading
import time
from collections.abc import Sequence

from prometheus_client import start_http_server
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import StopRequested
from rq.worker.base import BaseWorker
from sqlalchemy.exc import SQLAlchemyError

from services.worker.context import WorkerContext, set_context
from services.worker.delivery_pool import DeliveryPool
from services.worker.retries import DueRetryMover, move_due_retries
from services.worker.rq_classes import WORKER_CLASSES
from shared import keys
from shared.assignment import present_from
from shared.escalation import sweep_escalations
from shared.outbox import Outbox
from shared.presence import Presence
from shared.reconciler import try_reconcile
from shared.redis_client import redis_for
from shared.retention.sweep import try_sweep_retention
from shared.settings import Settings
from shared.sla import sweep_sla_breaches
from shared.webhooks.dispatch import dispatch_due, try_reconcile_deliveries

log = logging.getLogger(__name__)


class PeriodicMaintenance(threading.Thread):
    """Every ``maintenance_interval_seconds``: re-enqueue lost assessments,
    record claim-SLA breaches and move handoffs whose level is due."""

    def __init__(self, context: WorkerContext) -> None:
        super().__init__(name="maintenance", daemon=True)
        self._context = context
        self._present = present_from(Presence.from_settings(context.redis, context.settings))
        self._stopped = threading.Event()

    def run(self) -> None:
        interval = self._context.settings.maintenance_interval_seconds
        while not self._stopped.wait(interval):
            try:
                self.run_once()
            except Exception:  # keep maintaining: one bad pass must not end the thread
                log.exception("maintenance pass failed")

    def run_once(self) -> None:
        context = self._context
        try:
            breaches = sweep_sla_breaches(engine=context.engine)
            moves = sweep_escalations(engine=context.engine, present=self._present)
            report = try_reconcile(
                engine=context.engine, redis=context.redis, settings=context.settings
            )
            deliveries = try_reconcile_deliveries(
                engine=context.engine, redis=context.redis, settings=context.settings
            )
            retention = try_sweep_retention(
                engine=context.engine, redis=context.redis, settings=context.settings
            )
        except SQLAlchemyError as exc:
            log.warning("maintenance: database unavailable: %s", exc)
            return
        if breaches:
            log.info("maintenance: %d claim-SLA breaches recorded", breaches)
        if moves:
            log.info("maintenance: %d handoffs moved up a level", moves)
        if report is not None and (report.enqueued or report.failed):
            log.info("reconciler: %s", report)
        if deliveries is not None and deliveries.requeued:
            log.info("webhook reconciler: %s", deliveries)
        if retention:
            log.info("retention: %s", retention)

    def stop(self) -> None:
        self._stopped.set()


def parse_queues(text: str) -> tuple[str, ...]:
    """``assessments,notifications`` → the queues, in the order served. Raises
    ``ValueError`` naming an unknown or repeated queue, or none at all."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in keys.WORKER_QUEUES]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(
            f"--queues takes one or both of {', '.join(keys.WORKER_QUEUES)},"
            f" comma-separated, not {text!r}"
        )
    return tuple(name for name in keys.WORKER_QUEUES if name in names)


def run_worker(
    settings: Settings,
    *,
    queues: Sequence[str] = keys.WORKER_QUEUES,
    burst: bool = False,
    worker_class: str = "simple",
    name: str | None = None,
    metrics_port: int | None = None,
) -> bool:
    """Work ``queues`` (``assessments`` and ``notifications``, or one of them)
    until stopped (or, with ``burst``, until they are empty and the webhook tries
    handed to the pool are done). Returns whether any job was performed.
    With ``metrics_port``, serves Prometheus metrics (assessments and webhook
    deliveries by outcome and duration) on that port."""
    if metrics_port is not None:
        start_http_server(metrics_port, addr=settings.metrics_bind_host)
    context = WorkerContext.build(settings)
    if keys.NOTIFICATIONS_QUEUE in queues:
        context.delivery_pool = DeliveryPool(size=settings.webhook_concurrency)
    set_context(context)
    outbox = Outbox(engine=context.engine, redis=context.redis, settings=context.settings)
    outbox.start()
    maintenance = PeriodicMaintenance(context)
    maintenance.run_once()  # pick up what was missed while no worker ran
    retries = DueRetryMover(context.redis)
    if burst:
        _move_due_retries_once(context)
        _dispatch_once(context)
    else:
        maintenance.start()
        retries.start()
    try:
        return _work_until_stopped(
            context, queues=queues, burst=burst, worker_class=worker_class, name=name
        )
    finally:
        if context.delivery_pool is not None:
            context.delivery_pool.stop()  # the tries in flight finish and are recorded
        retries.stop()
        maintenance.stop()
        outbox.stop()
        context.close()


def _work_until_stopped(
    context: WorkerContext,
    *,
    queues: Sequence[str],
    burst: bool,
    worker_class: str,
    name: str | None,
) -> bool:
    """Runs RQ's work loop, and runs it again after Redis comes back.

    RQ's loop quits on a Redis error outside its dequeue (a heartbeat, its
    maintenance), which would end the process and with it the reconciler that
    re-enqueues what the outage lost. So the process outlives the outage.

    RQ gets a Redis client of its own: it raises its client's socket timeout
    above its blocking dequeue's by editing the pool's connection settings, which
    reach only connections opened afterwards. On the shared client that would
    let a dequeue land on an older connection with the service's 5 s timeout
    ("Redis connection timeout, quitting..." every 5 s), and give the relay and
    maintenance threads' new connections RQ's minutes-long timeout.
    """
    rq_redis = redis_for(context.settings)
    try:
        return _work_loop(
            context, rq_redis, queues=queues, burst=burst, worker_class=worker_class, name=name
        )
    finally:
        rq_redis.close()


def _work_loop(
    context: WorkerContext,
    rq_redis: Redis,
    *,
    queues: Sequence[str],
    burst: bool,
    worker_class: str,
    name: str | None,
) -> bool:
    rq_queues = [Queue(queue, connection=rq_redis) for queue in queues]
    worked = False
    while True:
        worker = WORKER_CLASSES[worker_class](rq_queues, connection=rq_redis, name=name)
        try:
            worked |= worker.work(burst=burst, logging_level=context.settings.log_level)
        except RedisError as exc:
            log.warning("worker: redis unavailable (%s)", exc)
        except ValueError as exc:
            if "active worker named" not in str(exc):
                raise
            # Our own earlier life (killed, restarted by its supervisor) still
            # registered: the operator gave this name to this process, take it over.
            log.warning("worker: %s; taking the name over", exc)
            _forget(worker)
            continue
        # RQ records a SIGTERM/SIGINT (warm shutdown) here.
        if burst or worker._shutdown_requested_date is not None:
            return worked
        try:
            _wait_for_redis(context)
        except StopRequested:
            return worked
        _forget(worker)


def _move_due_retries_once(context: WorkerContext) -> None:
    try:
        move_due_retries(context.redis)
    except RedisError as exc:
        log.warning("worker: could not move due retries: %s", exc)


def _dispatch_once(context: WorkerContext) -> None:
    try:
        dispatch_due(engine=context.engine, redis=context.redis, settings=context.settings)
    except (RedisError, SQLAlchemyError) as exc:
        log.warning("worker: could not enqueue due webhook deliveries: %s", exc)


def _wait_for_redis(context: WorkerContext) -> None:
    delay = 0.5
    while True:
        try:
            context.redis.ping()
            return
        except RedisError:
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _forget(worker: BaseWorker) -> None:
    """Drop the stale registration, so a restarted worker may reuse its name."""
    try:
        worker.register_death()
    except RedisError as exc:
        log.warning("worker: could not clear the old registration: %s", exc)
