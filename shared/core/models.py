"""Building blocks every package's models use: the role enum, strict request
bodies, UTC columns and times, and the error bodies of every 4xx and 5xx."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    field_validator,
)
from sqlmodel import Column, DateTime, Field

from shared.core.timeutil import isoformat


class Role(StrEnum):
    engineer = "engineer"
    senior = "senior"
    admin = "admin"


def utc_column(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


UtcTime = Annotated[datetime, PlainSerializer(isoformat, return_type=str)]


class StrictModel(BaseModel):
    """A request body: unknown fields refused, no NUL in a string. A number or a
    flag in a body is declared ``StrictInt`` / ``StrictBool``: pydantic's lax mode
    would store ``true`` as 1 and ``"5"`` as 5. (Not strict mode for the whole
    model: FastAPI validates the parsed JSON as Python, where strict mode refuses
    an enum's or a datetime's string.)"""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here (422), not at the INSERT (500),
        # in a string field or in a list of strings (a team's domains).
        strings = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(item, str) and "\x00" in item for item in strings):
            raise ValueError("must not contain NUL characters")
        return value


class ErrorBody(BaseModel):
    """Every 4xx and 5xx: a machine-readable ``error`` and a human ``detail``."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: str


class ClaimConflictBody(ErrorBody):
    claimed_by_id: str
    claimed_by_name: str
    claimed_at: str
