"""``/api/v1/analytics``: escalation metrics for admins, over ``shared.analytics``."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from services.api.deps import AdminDep, SessionDep
from services.api.errors import errors
from shared.analytics.models import EscalationAnalytics
from shared.analytics.queries import escalation_analytics

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

TIME_HELP = "ISO 8601; a time without an offset is UTC."


@router.get("/escalations", responses=errors(403, 429))
def get_escalation_analytics(
    principal: AdminDep,
    session: SessionDep,
    since: Annotated[
        datetime | None,
        Query(description=f"Window start, inclusive. {TIME_HELP} Default: until - 30 days."),
    ] = None,
    until: Annotated[
        datetime | None, Query(description=f"Window end, exclusive. {TIME_HELP} Default: now.")
    ] = None,
) -> EscalationAnalytics:
    """Counts and time-to-claim/assessment/resolve percentiles (nearest rank) for
    the caller's org's handoffs created in ``[since, until)``."""
    return escalation_analytics(session=session, org_id=principal.org_id, since=since, until=until)
