"""The worker process: an RQ worker on the ``assessments`` queue (with RQ's
scheduler, which runs retries with back-off), plus two background threads:
periodic maintenance (reconciler, claim SLA) and the outbox relay that
publishes the events jobs commit."""

import logging
import threading

from prometheus_client import start_http_server
from rq import Queue, SimpleWorker, SpawnWorker, Worker
from sqlalchemy.exc import SQLAlchemyError

from services.worker.context import WorkerContext, set_context
from shared import keys
from shared.db import on_events_committed
from shared.reconciler import try_reconcile
from shared.relay import EventRelay
from shared.settings import Settings
from shared.sla import sweep_sla_breaches

log = logging.getLogger(__name__)

WORKER_CLASSES: dict[str, type[Worker] | type[SimpleWorker]] = {
    "simple": SimpleWorker,
    "fork": Worker,
    "spawn": SpawnWorker,
}


class PeriodicMaintenance(threading.Thread):
    """Every ``maintenance_interval_seconds``: re-enqueue lost assessments and
    record claim-SLA breaches."""

    def __init__(self, context: WorkerContext) -> None:
        super().__init__(name="maintenance", daemon=True)
        self._context = context
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
            report = try_reconcile(
                engine=context.engine, redis=context.redis, settings=context.settings
            )
        except SQLAlchemyError as exc:
            log.warning("maintenance: database unavailable: %s", exc)
            return
        if breaches:
            log.info("maintenance: %d claim-SLA breaches recorded", breaches)
        if report is not None and (report.enqueued or report.failed):
            log.info("reconciler: %s", report)

    def stop(self) -> None:
        self._stopped.set()


def run_worker(
    settings: Settings,
    *,
    burst: bool = False,
    worker_class: str = "simple",
    name: str | None = None,
    metrics_port: int | None = None,
) -> bool:
    """Work the ``assessments`` queue until stopped (or, with ``burst``, until it is
    empty). Returns whether any job was performed. With ``metrics_port``, serves
    Prometheus metrics (assessments by outcome and duration) on that port."""
    if metrics_port is not None:
        start_http_server(metrics_port, addr=settings.metrics_bind_host)
    context = WorkerContext.build(settings)
    set_context(context)
    relay = EventRelay(engine=context.engine, redis=context.redis)
    on_events_committed(context.engine, relay.notify)
    relay.start()
    maintenance = PeriodicMaintenance(context)
    maintenance.run_once()  # pick up what was missed while no worker ran
    if not burst:
        maintenance.start()
    queue = Queue(keys.ASSESSMENTS_QUEUE, connection=context.redis)
    worker = WORKER_CLASSES[worker_class]([queue], connection=context.redis, name=name)
    try:
        return worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
    finally:
        maintenance.stop()
        relay.stop()
        context.close()
