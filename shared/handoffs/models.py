"""Tables (SQLModel) and the API's request/response models.

The database is the source of truth. ``events`` is the outbox and the audit
trail at once: every state change writes its event in the same transaction.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    StrictInt,
    model_validator,
)
from pydantic import Field as PydField
from sqlmodel import JSON, Column, Field, SQLModel

from shared.core.models import StrictModel, UtcTime, utc_column


class HandoffStatus(StrEnum):
    pending = "pending"
    claimed = "claimed"
    resolved = "resolved"
    cancelled = "cancelled"


OPEN_STATUSES = (HandoffStatus.pending.value, HandoffStatus.claimed.value)


class Priority(StrEnum):
    urgent = "urgent"
    high = "high"
    normal = "normal"
    low = "low"


#: Queue order: a lower rank is served first.
PRIORITY_RANK = {Priority.urgent: 0, Priority.high: 1, Priority.normal: 2, Priority.low: 3}


class ConfidenceTier(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class AssessmentStatus(StrEnum):
    pending = "pending"
    ready = "ready"
    failed = "failed"


# --- tables -----------------------------------------------------------------


class Handoff(SQLModel, table=True):
    __tablename__ = "handoffs"
    __table_args__ = (
        # One open (pending or claimed) handoff per session, enforced by the database
        # so that two replicas racing on the same session cannot both insert.
        sa.Index(
            "uq_handoffs_open_session",
            "org_id",
            "session_id",
            unique=True,
            sqlite_where=sa.text("status IN ('pending', 'claimed')"),
            postgresql_where=sa.text("status IN ('pending', 'claimed')"),
        ),
        sa.Index("ix_handoffs_queue", "org_id", "priority_rank", "created_at", "id"),
        sa.Index("ix_handoffs_assessment_status", "assessment_status"),
        # The assessor's memory: an org's latest resolutions, whatever its history.
        sa.Index(
            "ix_handoffs_resolved",
            "org_id",
            sa.text("resolved_at DESC"),
            sqlite_where=sa.text("status = 'resolved'"),
            postgresql_where=sa.text("status = 'resolved'"),
        ),
        sa.Index(
            "ix_handoffs_sla_due",
            "claim_deadline_at",
            sqlite_where=sa.text("sla_settled_at IS NULL"),
            postgresql_where=sa.text("sla_settled_at IS NULL"),
        ),
        sa.Index(
            "ix_handoffs_escalation_due",
            "next_escalation_at",
            sqlite_where=sa.text("next_escalation_at IS NOT NULL"),
            postgresql_where=sa.text("next_escalation_at IS NOT NULL"),
        ),
        # The retention sweep's candidates (shared/retention): closed, content not yet purged.
        sa.Index(
            "ix_handoffs_purge_due",
            "updated_at",
            sqlite_where=sa.text("status IN ('resolved', 'cancelled') AND purged_at IS NULL"),
            postgresql_where=sa.text("status IN ('resolved', 'cancelled') AND purged_at IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    org_id: str = Field(max_length=128)
    session_id: str = Field(max_length=128)
    status: str = Field(max_length=16)
    priority: str = Field(max_length=16)
    priority_rank: int
    problem_domain: str = Field(max_length=64)
    created_by_id: str = Field(max_length=128)
    created_by_name: str = Field(max_length=256)
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    engineer_notes: str = Field(default="", sa_type=sa.Text)
    snapshot: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    assessment_status: str = Field(default=AssessmentStatus.pending.value, max_length=16)
    ai_assessment_data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    #: Tries started by workers; bounds re-runs of an assessment that keeps crashing them.
    assessment_attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    claimed_by_id: str | None = Field(default=None, max_length=128)
    claimed_by_name: str | None = Field(default=None, max_length=256)
    claimed_at: datetime | None = utc_column(nullable=True)
    resolved_at: datetime | None = utc_column(nullable=True)
    resolution_notes: str | None = Field(default=None, sa_type=sa.Text)
    # The claim SLA lives here, not in any process, so it survives restarts.
    claim_deadline_at: datetime | None = utc_column(nullable=True)
    first_claimed_at: datetime | None = utc_column(nullable=True)  # kept across releases
    cancelled_at: datetime | None = utc_column(nullable=True)
    sla_breached_at: datetime | None = utc_column(nullable=True)
    #: Set once the SLA is answered: breached, or claimed or cancelled in time.
    sla_settled_at: datetime | None = utc_column(nullable=True)
    # Re-escalation (shared/escalation.py): the policy's levels as they were at
    # creation (null for handoffs older than levels: one level, all seniors), the
    # current level and loop, and when the next move is due (null: none is).
    escalation_levels: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    escalation_repeat: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    escalation_level: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    escalation_loop: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    next_escalation_at: datetime | None = utc_column(nullable=True)
    assigned_to_id: str | None = Field(default=None, max_length=128)
    assigned_to_name: str | None = Field(default=None, max_length=256)
    #: The current level's team (null: all seniors), kept with the level so that
    #: ``for=me`` and analytics need no JSON in SQL.
    escalation_team_id: str | None = Field(default=None, max_length=64)
    #: The level and team the first claim came at (kept across releases, like
    #: ``first_claimed_at``): analytics' ``claimed_at_level`` and ``time_to_claim_by_team``.
    first_claim_level: int | None = None
    first_claim_team_id: str | None = Field(default=None, max_length=64)
    #: When the transcript, tried steps and notes were purged (retention or an admin).
    purged_at: datetime | None = utc_column(nullable=True)
    #: Secrets replaced in its text (shared.redaction), across all its fields.
    redactions: int = Field(default=0, sa_column_kwargs={"server_default": "0"})

    @property
    def escalation_target(self) -> dict[str, Any]:
        """Who the current level targets: ``{"target", "team_id", "team_name"}``."""
        return escalation_target(self.escalation_levels, self.escalation_level)


def escalation_target(levels: list[dict[str, Any]] | None, level: int) -> dict[str, Any]:
    """Who level ``level`` of ``levels`` (a handoff's ``escalation_levels``) targets:
    ``{"target", "team_id", "team_name"}``; all seniors past the last level or without levels."""
    if levels is None or level >= len(levels):
        return {"target": "all_seniors", "team_id": None, "team_name": None}
    return {key: levels[level].get(key) for key in ("target", "team_id", "team_name")}


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a create carrying an ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"

    org_id: str = Field(primary_key=True, max_length=128)
    user_id: str = Field(primary_key=True, max_length=128)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    handoff_id: str = Field(max_length=36)
    response: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = utc_column()


# --- API models ----------------------------------------------------------------


class TriedStep(StrictModel):
    description: str = PydField(min_length=1, max_length=2_000)
    outcome: str = PydField(default="", max_length=2_000)


class TranscriptMessage(StrictModel):
    role: str = PydField(min_length=1, max_length=32)
    content: str = PydField(max_length=20_000)


#: The snapshot's lists that ``SnapshotSummary`` counts instead of carrying.
_SNAPSHOT_LISTS = ("tried_steps", "transcript")


class Snapshot(StrictModel):
    problem_summary: str = PydField(min_length=1, max_length=2_000)
    problem_domain: str = PydField(min_length=1, max_length=64)
    status: str = PydField(min_length=1, max_length=64)
    step_count: StrictInt = PydField(ge=0, le=1_000_000)
    confidence_tier: ConfidenceTier
    tried_steps: list[TriedStep] = PydField(default_factory=list, max_length=200)
    transcript: list[TranscriptMessage] | None = PydField(default=None, max_length=500)


class HandoffCreate(StrictModel):
    session_id: str = PydField(min_length=1, max_length=128)
    engineer_notes: str = PydField(default="", max_length=10_000)
    priority: Priority = Priority.normal
    snapshot: Snapshot


class ResolveBody(StrictModel):
    resolution_notes: str = PydField(min_length=1, max_length=10_000)


class ReassignBody(StrictModel):
    """``POST /handoffs/{id}/reassign``: who takes the claim over."""

    to_id: str = PydField(min_length=1, max_length=128)
    to_name: str = PydField(min_length=1, max_length=256)
    note: str = PydField(default="", max_length=2_000)


class AssessmentData(BaseModel):
    summary: str
    likely_causes: list[str]
    suggested_steps: list[str]
    confidence: ConfidenceTier
    generator: str
    generated_at: str


class EscalationTarget(BaseModel):
    """Who a level reaches: ``team`` names a team; ``domain_team`` is the team owning
    the handoff's problem domain (``all_seniors`` when no team owned it at creation)."""

    target: str = "all_seniors"
    team_id: str | None = None
    team_name: str | None = None


class HandoffPublic(BaseModel):
    id: str
    org_id: str
    session_id: str
    status: HandoffStatus
    priority: Priority
    created_by_id: str
    created_by_name: str
    created_at: UtcTime
    updated_at: UtcTime
    engineer_notes: str
    snapshot: Snapshot
    assessment_status: AssessmentStatus
    ai_assessment_data: AssessmentData | None
    claimed_by_id: str | None
    claimed_by_name: str | None
    claimed_at: UtcTime | None
    resolved_at: UtcTime | None
    resolution_notes: str | None
    claim_deadline_at: UtcTime | None = None
    sla_breached_at: UtcTime | None = None
    # Defaults: events stored before re-escalation existed still validate.
    escalation_level: int = 0
    escalation_loop: int = 0
    escalation_target: EscalationTarget = PydField(default_factory=EscalationTarget)
    next_escalation_at: UtcTime | None = None
    assigned_to_id: str | None = None
    assigned_to_name: str | None = None
    #: Set once retention or an admin purged the transcript, tried steps and notes.
    purged_at: UtcTime | None = None
    #: How many secrets were redacted from its text (never what they were).
    redactions: int = 0


class SnapshotSummary(BaseModel):
    """The snapshot as an event carries it: what a queue card and a notification
    show, with counts in place of the tried steps and the transcript (the full
    snapshot is ``GET /handoffs/{id}``'s). A full snapshot (an event stored before
    events were slim) validates to the same summary."""

    problem_summary: str
    problem_domain: str
    status: str
    step_count: int
    confidence_tier: ConfidenceTier
    tried_step_count: int = 0
    transcript_message_count: int = 0

    @model_validator(mode="before")
    @classmethod
    def _counted(cls, value: Any) -> Any:
        if isinstance(value, dict) and ("tried_steps" in value or "transcript" in value):
            counted = {key: item for key, item in value.items() if key not in _SNAPSHOT_LISTS}
            counted["tried_step_count"] = len(value.get("tried_steps") or [])
            counted["transcript_message_count"] = len(value.get("transcript") or [])
            return counted
        return value


class HandoffSummary(BaseModel):
    """A handoff as an event carries it (``EventPublic.handoff``): ``HandoffPublic``
    without its long text (``engineer_notes``, ``resolution_notes``,
    ``ai_assessment_data``) and with a ``SnapshotSummary``. Every string it keeps
    has a length limit (the summary 2,000 characters, names 256, ids 128), so an
    event's size does not grow with the transcript, the tried steps or the notes.
    A full ``HandoffPublic`` dict (an event stored before events were slim)
    validates to the same summary."""

    id: str
    org_id: str
    session_id: str
    status: HandoffStatus
    priority: Priority
    created_by_id: str
    created_by_name: str
    created_at: UtcTime
    updated_at: UtcTime
    snapshot: SnapshotSummary
    assessment_status: AssessmentStatus
    claimed_by_id: str | None
    claimed_by_name: str | None
    claimed_at: UtcTime | None
    resolved_at: UtcTime | None
    claim_deadline_at: UtcTime | None = None
    sla_breached_at: UtcTime | None = None
    escalation_level: int = 0
    escalation_loop: int = 0
    escalation_target: EscalationTarget = PydField(default_factory=EscalationTarget)
    next_escalation_at: UtcTime | None = None
    assigned_to_id: str | None = None
    assigned_to_name: str | None = None
    #: Set once retention or an admin purged the transcript, tried steps and notes.
    purged_at: UtcTime | None = None
    #: How many secrets were redacted from its text (never what they were).
    redactions: int = 0


class HandoffPage(BaseModel):
    items: list[HandoffPublic]
    next_cursor: str | None
