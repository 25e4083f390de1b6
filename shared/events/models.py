"""The event table, the per-org sequence counter, and the API models of events
and their ``data`` payloads."""

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from sqlmodel import JSON, Column, Field, SQLModel

from shared.core.models import UtcTime, utc_column
from shared.handoffs.models import HandoffSummary


class EventType(StrEnum):
    created = "handoff_created"
    assessment_ready = "handoff_assessment_ready"
    assessment_failed = "handoff_assessment_failed"
    claimed = "handoff_claimed"
    released = "handoff_released"
    resolved = "handoff_resolved"
    cancelled = "handoff_cancelled"
    sla_breached = "handoff_sla_breached"
    escalated = "handoff_escalated"
    assigned = "handoff_assigned"
    reassigned = "handoff_reassigned"


class Event(SQLModel, table=True):
    """One state change. ``seq`` increases per org and is the SSE ``id:``."""

    __tablename__ = "events"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "seq", name="uq_events_org_seq"),
        sa.Index(  # the relay's "unpublished events of org X, by seq" (shared/outbox.py)
            "ix_events_unpublished_by_org",
            "org_id",
            "seq",
            sqlite_where=sa.text("published_at IS NULL"),
            postgresql_where=sa.text("published_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(max_length=128)
    seq: int = Field(sa_type=sa.BigInteger)
    type: str = Field(max_length=64)
    handoff_id: str = Field(max_length=36, index=True)
    actor_id: str | None = Field(default=None, max_length=128)
    actor_name: str | None = Field(default=None, max_length=256)
    at: datetime = utc_column()
    handoff: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    published_at: datetime | None = utc_column(nullable=True)
    request_id: str | None = Field(default=None, max_length=64)
    #: What the type alone does not say, e.g. ``{"escalation": {...}}``; null otherwise.
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class OrgEventCounter(SQLModel, table=True):
    """Allocates per-org event numbers. Its row lock also orders an org's
    event-writing transactions, so ``seq`` values commit in increasing order."""

    __tablename__ = "org_event_counters"

    org_id: str = Field(primary_key=True, max_length=128)
    last_seq: int = Field(default=0, sa_type=sa.BigInteger)


class EscalationMove(BaseModel):
    """``data.escalation`` of a ``handoff_escalated`` event: the level reached."""

    level: int
    loop: int
    target: str
    team_id: str | None
    mode: str


class Assignment(BaseModel):
    """``data.assignment`` of a ``handoff_assigned`` event."""

    assigned_to_id: str
    assigned_to_name: str
    level: int
    loop: int


class Reassignment(BaseModel):
    """``data.reassignment`` of a ``handoff_reassigned`` event."""

    from_id: str | None
    from_name: str | None
    to_id: str
    to_name: str
    note: str


class EventData(BaseModel):
    """An event's ``data``: the one key its type uses (absent keys are left out,
    as on the SSE stream, which sends the stored JSON)."""

    model_config = ConfigDict(extra="allow")

    escalation: EscalationMove | None = None
    assignment: Assignment | None = None
    reassignment: Reassignment | None = None

    @model_serializer(mode="wrap")
    def _without_absent_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class EventPublic(BaseModel):
    id: int
    type: EventType
    handoff_id: str
    org_id: str
    at: UtcTime
    actor_id: str | None
    actor_name: str | None
    request_id: str | None = None
    data: EventData | None = None
    #: The handoff after the change, slim: the rest is one ``GET /handoffs/{id}`` away.
    handoff: HandoffSummary


class EventList(BaseModel):
    items: list[EventPublic]
