"""The org's redaction settings: its table and the API's models."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, field_validator
from pydantic import Field as PydField
from sqlmodel import JSON, Column, Field, SQLModel

from shared.core.models import StrictModel, UtcTime, utc_column

MAX_PATTERNS = 50
#: A pattern's name is its marker's kind, ``[redacted: <name>]``: no brackets.
PATTERN_NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]*$"


class RedactionSettings(SQLModel, table=True):
    """An org's settings; no row: the defaults (enabled, no patterns of its own)."""

    __tablename__ = "redaction_settings"

    org_id: str = Field(primary_key=True, max_length=128)
    enabled: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    #: ``[{"name", "regex"}, ...]`` as the admin saved them (each one compiled then).
    patterns: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = utc_column()


class RedactionPatternBody(StrictModel):
    name: str = PydField(min_length=1, max_length=64, pattern=PATTERN_NAME)
    regex: str = PydField(min_length=1, max_length=2_000)


class RedactionSettingsBody(StrictModel):
    """``PUT /api/v1/settings/redaction``: the whole settings."""

    enabled: bool = True
    patterns: list[RedactionPatternBody] = PydField(default_factory=list, max_length=MAX_PATTERNS)

    @field_validator("patterns")
    @classmethod
    def _unique_names(cls, patterns: list[RedactionPatternBody]) -> list[RedactionPatternBody]:
        names = [pattern.name for pattern in patterns]
        if len(set(names)) != len(names):
            raise ValueError("pattern names must be unique")
        return patterns


class RedactionPatternPublic(BaseModel):
    name: str
    regex: str


class RedactionSettingsPublic(BaseModel):
    """``updated_at`` is null while the org has the defaults."""

    enabled: bool
    patterns: list[RedactionPatternPublic]
    updated_at: UtcTime | None
