"""The ``api_keys`` table and the API's models of it."""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, field_validator
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from shared.core.models import StrictModel, UtcTime, utc_column
from shared.core.timeutil import as_utc, utcnow

#: Every key starts with this, so a bearer credential's kind is known at a glance.
KEY_PREFIX = "esk_"


class ApiKeyRole(StrEnum):
    """A key acts as an engineer or a senior; never as an admin."""

    engineer = "engineer"
    senior = "senior"


class ApiKey(SQLModel, table=True):
    """One key. Only ``digest`` (SHA-256 of the whole key) is stored, never the
    key; ``prefix`` (its first characters) lets a person tell keys apart.
    A revoked key keeps its row (``created_by_id`` of its handoffs names it)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        sa.UniqueConstraint("digest", name="uq_api_keys_digest"),
        sa.Index("ix_api_keys_org_created", "org_id", "created_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=36)
    org_id: str = Field(max_length=128)
    name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    prefix: str = Field(max_length=16)
    digest: str = Field(max_length=64)
    created_by_id: str = Field(max_length=128)
    created_at: datetime = utc_column()
    expires_at: datetime | None = utc_column(nullable=True)
    last_used_at: datetime | None = utc_column(nullable=True)
    revoked_at: datetime | None = utc_column(nullable=True)


class ApiKeyCreate(StrictModel):
    name: str = PydField(min_length=1, max_length=64)
    role: ApiKeyRole
    expires_at: datetime | None = None

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2027-01-01T00:00:00Z)")
        if as_utc(value) <= utcnow():
            raise ValueError("expires_at must be in the future")
        return as_utc(value)


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    role: ApiKeyRole
    prefix: str
    created_by_id: str
    created_at: UtcTime
    expires_at: UtcTime | None
    last_used_at: UtcTime | None


class ApiKeyWithSecret(ApiKeyPublic):
    """The answer to create, the only one that carries ``key``."""

    key: str


class ApiKeyList(BaseModel):
    items: list[ApiKeyPublic]
