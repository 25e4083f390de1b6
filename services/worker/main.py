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
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

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
from shared.assessments.reconciler import try_reconcile
from shared.core import keys
from shared.core.redis_client import redis_for
from shared.core.settings import Settings
from shared.core.timeutil import utcnow
from shared.events.outbox import Outbox
from shared.retention.sweep import try_sweep_retention
from shared.routing.assignment import present_from
from shared.routing.escalation import next_escalation_due, sweep_escalations
from shared.routing.presence import Presence
from shared.routing.sla import sweep_sla_breaches
from shared.webhooks.dispatch import dispatch_due, try_reconcile_deliveries

log = logging.getLogger(__name__)

#: After a level's deadline, before the sweep it wakes runs (the deadline must have passed).
WAKE_LAG_SECONDS = 0.005
#: The shortest wait between level sweeps.
MIN_WAKE_SECONDS = 0.2


class PeriodicMaintenance(threading.Thread):
    """Every ``maintenance_interval_seconds``: re-enqueue lost assessments,
    record claim-SLA breaches and move handoffs whose level is due. Between
    passes it also wakes when the next level falls due and moves it then, so a
    level moves at most one interval late (new handoffs) and usually at once."""

    def __init__(self, context: WorkerContext) -> None:
        super().__init__(name="maintenance", daemon=True)
        self._context = context
        self._present = present_from(Presence.from_settings(context.redis, context.settings))
        self._stopped = threading.Event()

    def run(self) -> None:
        interval = self._context.settings.maintenance_interval_seconds
        next_pass = time.monotonic() + interval
        while not self._stopped.wait(self._seconds_until_work(next_pass)):
            # Keep maintaining: one bad pass (any error) must not end the thread.
            if time.monotonic() >= next_pass:
                _logging_errors("maintenance pass", self.run_once)
                next_pass = time.monotonic() + interval
            else:
                _logging_errors("escalation sweep", self.sweep_levels)

    def _seconds_until_work(self, next_pass: float) -> float:
        """Until the next full pass, or the next level's deadline if sooner."""
        until_pass = max(next_pass - time.monotonic(), 0.0)
        try:
            deadline = next_escalation_due(engine=self._context.engine)
        except SQLAlchemyError:  # the pass logs the database being down
            return until_pass
        except Exception:  # the thread must not end: wait for the next pass
            log.exception("maintenance: could not read the next level's deadline")
            return until_pass
        if deadline is None:
            return until_pass
        until_due = (deadline - utcnow()).total_seconds() + WAKE_LAG_SECONDS
        # A deadline still past after a sweep (more due than one sweep's batch, or
        # a failed move) is tried again soon, not in a busy loop.
        return min(until_pass, max(until_due, MIN_WAKE_SECONDS))

    def sweep_levels(self) -> None:
        """Only the level sweep: what waking for a deadline runs."""
        try:
            moves = sweep_escalations(engine=self._context.engine, present=self._present)
        except SQLAlchemyError as exc:
            log.warning("escalation sweep: database unavailable: %s", exc)
            return
        if moves:
            log.info("maintenance: %d level moves", moves)

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
            log.info("maintenance: %d level moves", moves)
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
    # Pick up what was missed while no worker ran; Redis may be down now too.
    _logging_errors("maintenance pass", maintenance.run_once)
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
    """Builds RQ's worker and runs it; after a Redis error anywhere in that (the
    constructor's ``CLIENT SETNAME`` too), waits for Redis and builds a new one.
    Returns on a warm shutdown (SIGTERM/SIGINT) or, with ``burst``, when done."""
    rq_queues = [Queue(queue, connection=rq_redis) for queue in queues]
    worked = False
    pause = RebuildPause()
    previous = _stop_on_signal()
    try:
        while True:
            worker: BaseWorker | None = None
            pause.started()
            try:
                worker = WORKER_CLASSES[worker_class](rq_queues, connection=rq_redis, name=name)
                worked |= worker.work(burst=burst, logging_level=context.settings.log_level)
            except RedisError as exc:
                log.warning("worker: redis unavailable (%s)", exc)
            except ValueError as exc:
                if worker is None or "active worker named" not in str(exc):
                    raise
                # Our own earlier life (killed, restarted by its supervisor) still
                # registered: the operator gave this name to this process, take it over.
                log.warning("worker: %s; taking the name over", exc)
                _forget(worker)
                pause.wait()  # a registration _forget cannot clear must not spin
                continue
            _stop_on_signal()  # RQ's handlers would act on the worker that ended
            # RQ records a SIGTERM/SIGINT (warm shutdown) here.
            if burst or (worker is not None and worker._shutdown_requested_date is not None):
                return worked
            pause.wait()
            _wait_for_redis(context)
            if worker is not None:
                _forget(worker)
    except StopRequested:  # SIGTERM/SIGINT outside RQ's loop (before, between its runs)
        return worked
    finally:
        _restore_signal_handlers(previous)


_Handlers = dict[signal.Signals, Any]


def _stop_on_signal() -> _Handlers:
    """Outside RQ's loop, SIGTERM and SIGINT raise ``StopRequested`` (RQ installs
    its own handlers in ``work()``). Returns the handlers replaced; does nothing
    off the main thread, where Python cannot set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGINT)}


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested


def _restore_signal_handlers(handlers: _Handlers) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


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


class RebuildPause:
    """The wait before rebuilding RQ's worker: 0.5 s, doubling to 5 s while runs
    keep failing within a minute, so a Redis that answers PING but refuses RQ's
    writes (out of memory, say) is not hammered in a loop."""

    FIRST_SECONDS = 0.5
    MAX_SECONDS = 5.0
    #: A run this long was healthy: the next failure pauses from the start again.
    HEALTHY_RUN_SECONDS = 60.0

    def __init__(self) -> None:
        self._seconds = self.FIRST_SECONDS
        self._run_started = time.monotonic()

    def started(self) -> None:
        self._run_started = time.monotonic()

    def wait(self) -> None:
        if time.monotonic() - self._run_started >= self.HEALTHY_RUN_SECONDS:
            self._seconds = self.FIRST_SECONDS
        time.sleep(self._seconds)
        self._seconds = min(self._seconds * 2, self.MAX_SECONDS)


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
    """Drop the stale registration, so a restarted worker may reuse its name, and
    stop its command listener (its own teardown may have failed on Redis before
    stopping it, and it would otherwise retry forever beside the new one's)."""
    listener = worker.pubsub_thread
    if listener is not None and listener.is_alive():
        listener.stop()
    try:
        worker.register_death()
    except RedisError as exc:
        log.warning("worker: could not clear the old registration: %s", exc)


def _logging_errors(what: str, call: Callable[[], None]) -> None:
    """``call()``; any error is logged, so a thread's loop (or the start) goes on."""
    try:
        call()
    except Exception:
        log.exception("%s failed", what)
