"""The per-org retention settings: a row, and its API shape."""

from datetime import datetime

from pydantic import BaseModel, StrictInt
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from shared.core.models import StrictModel, UtcTime, utc_column

#: Days are at most this (100 years): a bound, not a policy.
MAX_DAYS = 36_500

Days = StrictInt


class OrgRetention(SQLModel, table=True):
    """An org's settings; no row: the configured defaults (``ESCALATIONS_RETENTION_*``)."""

    __tablename__ = "org_retention"

    org_id: str = Field(primary_key=True, max_length=128)
    handoff_content_days: int
    event_days: int
    delivery_days: int
    updated_at: datetime = utc_column()


class RetentionBody(StrictModel):
    """``PUT /api/v1/settings/retention``: whole days, 0 keeps for ever."""

    handoff_content_days: Days = PydField(ge=0, le=MAX_DAYS)
    event_days: Days = PydField(ge=0, le=MAX_DAYS)
    delivery_days: Days = PydField(ge=0, le=MAX_DAYS)


class RetentionPublic(BaseModel):
    handoff_content_days: int
    event_days: int
    delivery_days: int
    #: False while the org uses the configured defaults.
    is_default: bool
    updated_at: UtcTime | None
