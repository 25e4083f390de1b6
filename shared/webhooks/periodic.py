"""The webhooks package's sweep: make a delivery whose job was lost due again."""

from shared.core.periodic import Sweep, SweepContext
from shared.webhooks.dispatch import try_reconcile_deliveries


def reconcile(context: SweepContext) -> object:
    report = try_reconcile_deliveries(
        engine=context.engine, redis=context.redis, settings=context.settings
    )
    return report if report is not None and report.requeued else None


SWEEPS = (Sweep("webhook reconciler", reconcile),)
