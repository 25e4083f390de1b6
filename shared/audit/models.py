"""The audit log's table and API shapes."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import JSON, Column, Field, SQLModel

from shared.core.models import UtcTime, utc_column


class AuditEntry(SQLModel, table=True):
    """One change. Rows are only ever inserted: nothing updates or deletes them
    (retention leaves them alone too)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_org", "org_id", "id"),
        sa.Index("ix_audit_log_org_kind", "org_id", "kind", "id"),
        sa.Index("ix_audit_log_org_actor", "org_id", "actor_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(max_length=128)
    at: datetime = utc_column()
    #: Who: a person's id, ``apikey:<id>``, or ``system`` (the retention sweep).
    actor_id: str = Field(max_length=128)
    actor_name: str = Field(max_length=256)
    #: What, as ``<object>.<verb>``: ``team.created``, ``webhook.secret_rotated``, …
    kind: str = Field(max_length=64)
    target_id: str | None = Field(default=None, max_length=128)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class AuditPublic(BaseModel):
    id: int
    at: UtcTime
    actor_id: str
    actor_name: str
    kind: str
    target_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditPublic]
    next_cursor: str | None
