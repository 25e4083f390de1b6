"""The routing package's sweeps: claim-SLA breaches and level moves. (The worker
also wakes the level sweep alone when the next level falls due.)"""

from shared.core.periodic import Sweep, SweepContext
from shared.routing.assignment import present_from
from shared.routing.escalation import sweep_escalations
from shared.routing.presence import Presence
from shared.routing.sla import sweep_sla_breaches


def move_levels(context: SweepContext) -> int:
    present = present_from(Presence.from_settings(context.redis, context.settings))
    return sweep_escalations(engine=context.engine, present=present)


SWEEPS = (
    Sweep("claim-SLA breaches recorded", lambda context: sweep_sla_breaches(engine=context.engine)),
    Sweep("level moves", move_levels),
)
