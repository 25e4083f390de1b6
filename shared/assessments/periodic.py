"""The assessments package's sweep: re-enqueue assessments a lost job left pending."""

from shared.assessments.reconciler import try_reconcile
from shared.core.periodic import Sweep, SweepContext


def reconcile(context: SweepContext) -> object:
    report = try_reconcile(engine=context.engine, redis=context.redis, settings=context.settings)
    return report if report is not None and (report.enqueued or report.failed) else None


SWEEPS = (Sweep("assessment reconciler", reconcile),)
