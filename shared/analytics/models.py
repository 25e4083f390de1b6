"""The analytics response models."""

from pydantic import BaseModel

from shared.core.models import UtcTime

# --- response models --------------------------------------------------------------


class DurationStats(BaseModel):
    """Seconds; ``p50``, ``p90`` and ``max`` are null when ``count`` is 0."""

    count: int
    p50: float | None
    p90: float | None
    max: float | None


class StatusCounts(BaseModel):
    pending: int = 0
    claimed: int = 0
    resolved: int = 0
    cancelled: int = 0


class DomainStats(BaseModel):
    domain: str
    count: int
    time_to_claim_p50_seconds: float | None
    time_to_claim_p90_seconds: float | None


class LevelCount(BaseModel):
    level: int
    count: int


class TeamClaimStats(BaseModel):
    """``team_id`` and ``team_name`` are null for all seniors (and ``team_name`` for
    a team deleted since)."""

    team_id: str | None
    team_name: str | None
    count: int
    p50: float | None
    p90: float | None


class SeniorStats(BaseModel):
    id: str
    name: str
    claimed: int
    resolved: int
    time_to_claim_p50_seconds: float | None


class EscalationAnalytics(BaseModel):
    since: UtcTime
    until: UtcTime
    total: int
    by_status: StatusCounts
    time_to_claim_seconds: DurationStats
    time_to_assessment_seconds: DurationStats
    time_to_resolve_seconds: DurationStats
    by_domain: list[DomainStats]
    sla_breaches: int
    claimed_at_level: list[LevelCount]
    time_to_claim_by_team: list[TeamClaimStats]
    seniors: list[SeniorStats]
