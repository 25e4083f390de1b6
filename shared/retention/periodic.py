"""The retention package's sweep: purge what each org's retention has expired."""

from shared.core.periodic import Sweep, SweepContext
from shared.retention.sweep import try_sweep_retention


def purge(context: SweepContext) -> object:
    return try_sweep_retention(
        engine=context.engine, redis=context.redis, settings=context.settings
    )


SWEEPS = (Sweep("retention", purge),)
