"""Tables (SQLModel) and the API's request/response models.

The database is the source of truth. ``events`` is the outbox and the audit
trail at once: every state change writes its event in the same transaction.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    StrictInt,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic import Field as PydField
from sqlmodel import JSON, Column, DateTime, Field, SQLModel

from shared.timeutil import isoformat


class Role(StrEnum):
    engineer = "engineer"
    senior = "senior"
    admin = "admin"


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


def _utc_column(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


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
    created_at: datetime = _utc_column()
    updated_at: datetime = _utc_column()
    engineer_notes: str = Field(default="", sa_type=sa.Text)
    snapshot: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    assessment_status: str = Field(default=AssessmentStatus.pending.value, max_length=16)
    ai_assessment_data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    #: Tries started by workers; bounds re-runs of an assessment that keeps crashing them.
    assessment_attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    claimed_by_id: str | None = Field(default=None, max_length=128)
    claimed_by_name: str | None = Field(default=None, max_length=256)
    claimed_at: datetime | None = _utc_column(nullable=True)
    resolved_at: datetime | None = _utc_column(nullable=True)
    resolution_notes: str | None = Field(default=None, sa_type=sa.Text)
    # The claim SLA lives here, not in any process, so it survives restarts.
    claim_deadline_at: datetime | None = _utc_column(nullable=True)
    first_claimed_at: datetime | None = _utc_column(nullable=True)  # kept across releases
    cancelled_at: datetime | None = _utc_column(nullable=True)
    sla_breached_at: datetime | None = _utc_column(nullable=True)
    #: Set once the SLA is answered: breached, or claimed or cancelled in time.
    sla_settled_at: datetime | None = _utc_column(nullable=True)
    # Re-escalation (shared/escalation.py): the policy's levels as they were at
    # creation (null for handoffs older than levels: one level, all seniors), the
    # current level and loop, and when the next move is due (null: none is).
    escalation_levels: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    escalation_repeat: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    escalation_level: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    escalation_loop: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    next_escalation_at: datetime | None = _utc_column(nullable=True)
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
    purged_at: datetime | None = _utc_column(nullable=True)
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
    at: datetime = _utc_column()
    handoff: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    published_at: datetime | None = _utc_column(nullable=True)
    request_id: str | None = Field(default=None, max_length=64)
    #: What the type alone does not say, e.g. ``{"escalation": {...}}``; null otherwise.
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class LastAssignment(SQLModel, table=True):
    """Each senior's last assignment: assign mode's tie-break (least recently
    assigned first, by the ``seq`` of their last ``handoff_assigned`` event)."""

    __tablename__ = "last_assignments"

    org_id: str = Field(primary_key=True, max_length=128)
    user_id: str = Field(primary_key=True, max_length=128)
    event_seq: int = Field(sa_type=sa.BigInteger)
    assigned_at: datetime = _utc_column()


class OrgEventCounter(SQLModel, table=True):
    """Allocates per-org event numbers. Its row lock also orders an org's
    event-writing transactions, so ``seq`` values commit in increasing order."""

    __tablename__ = "org_event_counters"

    org_id: str = Field(primary_key=True, max_length=128)
    last_seq: int = Field(default=0, sa_type=sa.BigInteger)


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a create carrying an ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"

    org_id: str = Field(primary_key=True, max_length=128)
    user_id: str = Field(primary_key=True, max_length=128)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    handoff_id: str = Field(max_length=36)
    response: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc_column()


class Team(SQLModel, table=True):
    """A named group of seniors. Members and owned domains are rows of their own
    (``team_members``, ``team_domains``), so the database settles who owns a domain."""

    __tablename__ = "teams"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "name", name="uq_teams_org_name"),
        # The target of the (org_id, team_id) foreign keys: no row can name another org's team.
        sa.UniqueConstraint("org_id", "id", name="uq_teams_org_id"),
    )

    id: str = Field(primary_key=True, max_length=36)
    org_id: str = Field(max_length=128)
    name: str = Field(max_length=64)
    #: The Slack channel (id) where the bot posts handoffs reaching this team's level.
    slack_channel: str | None = Field(default=None, max_length=32)
    created_at: datetime = _utc_column()
    updated_at: datetime = _utc_column()


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_members"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["org_id", "team_id"], ["teams.org_id", "teams.id"], ondelete="CASCADE"
        ),
        sa.Index("ix_team_members_user", "org_id", "user_id"),
    )

    team_id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(primary_key=True, max_length=128)
    org_id: str = Field(max_length=128)
    name: str = Field(max_length=256)
    position: int


class TeamDomain(SQLModel, table=True):
    """``(org_id, domain)`` is the key: a domain belongs to at most one team of an org."""

    __tablename__ = "team_domains"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["org_id", "team_id"], ["teams.org_id", "teams.id"], ondelete="CASCADE"
        ),
        sa.Index("ix_team_domains_team", "team_id"),
    )

    org_id: str = Field(primary_key=True, max_length=128)
    domain: str = Field(primary_key=True, max_length=64)
    team_id: str = Field(max_length=36)
    position: int


class KnownPerson(SQLModel, table=True):
    """Someone of the org who authenticated, as their last token said
    (``shared.people``). ``last_seen_at`` is written at most once per
    ``PEOPLE_SEEN_WRITE_SECONDS`` per person and replica, so it may lag by that."""

    __tablename__ = "people"
    __table_args__ = (sa.Index("ix_people_org_last_seen", "org_id", "last_seen_at"),)

    org_id: str = Field(primary_key=True, max_length=128)
    id: str = Field(primary_key=True, max_length=128)
    name: str = Field(max_length=256)
    role: str = Field(max_length=16)
    first_seen_at: datetime = _utc_column()
    last_seen_at: datetime = _utc_column()


class EscalationPolicy(SQLModel, table=True):
    """An org's policy; its levels are ``escalation_levels`` rows. No row: the default."""

    __tablename__ = "escalation_policies"

    org_id: str = Field(primary_key=True, max_length=128)
    repeat: int
    created_at: datetime = _utc_column()
    updated_at: datetime = _utc_column()


class EscalationLevel(SQLModel, table=True):
    """One level. Its team (target ``team``) is a foreign key without cascade: a
    team the policy names cannot be deleted, whichever replica tries."""

    __tablename__ = "escalation_levels"
    __table_args__ = (
        sa.ForeignKeyConstraint(["org_id"], ["escalation_policies.org_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["org_id", "team_id"], ["teams.org_id", "teams.id"]),
        sa.Index("ix_escalation_levels_team", "team_id"),
    )

    org_id: str = Field(primary_key=True, max_length=128)
    position: int = Field(primary_key=True)
    after_seconds: int
    target: str = Field(max_length=16)
    team_id: str | None = Field(default=None, max_length=36)
    mode: str = Field(max_length=16)


# --- API models ----------------------------------------------------------------

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


# --- teams, escalation policy, me ------------------------------------------------

MAX_TEAM_MEMBERS = 500
MAX_TEAM_DOMAINS = 200
MAX_POLICY_LEVELS = 10
MAX_POLICY_REPEAT = 5
MAX_LEVEL_AFTER_SECONDS = 86_400


class LevelTarget(StrEnum):
    domain_team = "domain_team"
    team = "team"
    all_seniors = "all_seniors"


class LevelMode(StrEnum):
    broadcast = "broadcast"
    assign = "assign"


class TeamMemberBody(StrictModel):
    id: str = PydField(min_length=1, max_length=128)
    name: str = PydField(min_length=1, max_length=256)


DomainName = Annotated[str, PydField(min_length=1, max_length=64)]


class TeamBody(StrictModel):
    """A whole team: ``POST /teams`` and ``PUT /teams/{id}``."""

    name: str = PydField(min_length=1, max_length=64)
    members: list[TeamMemberBody] = PydField(default_factory=list, max_length=MAX_TEAM_MEMBERS)
    domains: list[DomainName] = PydField(default_factory=list, max_length=MAX_TEAM_DOMAINS)
    #: A Slack channel id (``C…``): handoffs reaching this team's level are posted there too.
    slack_channel: str | None = PydField(default=None, pattern=r"^[CG][A-Z0-9]{2,31}$")

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("members")
    @classmethod
    def _unique_member_ids(cls, members: list[TeamMemberBody]) -> list[TeamMemberBody]:
        _refuse_duplicates([member.id for member in members], "member id")
        return members

    @field_validator("domains")
    @classmethod
    def _unique_domains(cls, domains: list[str]) -> list[str]:
        _refuse_duplicates(domains, "domain")
        return domains


def _refuse_duplicates(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} appears twice")
        seen.add(value)


class TeamMemberPublic(BaseModel):
    id: str
    name: str


class TeamPublic(BaseModel):
    id: str
    name: str
    members: list[TeamMemberPublic]
    domains: list[str]
    slack_channel: str | None = None
    created_at: UtcTime
    updated_at: UtcTime


class TeamSummary(BaseModel):
    """A team without its member list: ``GET /teams?members=false``."""

    id: str
    name: str
    member_count: int
    domains: list[str]
    slack_channel: str | None = None
    created_at: UtcTime
    updated_at: UtcTime


class TeamPage(BaseModel):
    """One page of ``GET /teams``: whole teams, or summaries with ``members=false``."""

    items: list[TeamPublic] | list[TeamSummary]
    next_cursor: str | None


class TeamRef(BaseModel):
    id: str
    name: str


class MePublic(BaseModel):
    id: str
    name: str
    role: Role
    org_id: str
    teams: list[TeamRef]


class PolicyLevelBody(StrictModel):
    after_seconds: StrictInt = PydField(ge=1, le=MAX_LEVEL_AFTER_SECONDS)
    target: LevelTarget
    team_id: str | None = PydField(default=None, min_length=1, max_length=64)
    mode: LevelMode = LevelMode.broadcast

    @model_validator(mode="after")
    def _team_id_with_team_target_only(self) -> "PolicyLevelBody":
        if self.target is LevelTarget.team and self.team_id is None:
            raise ValueError("team_id is required when target is team")
        if self.target is not LevelTarget.team and self.team_id is not None:
            raise ValueError("team_id is allowed only when target is team")
        return self


class EscalationPolicyBody(StrictModel):
    levels: list[PolicyLevelBody] = PydField(min_length=1, max_length=MAX_POLICY_LEVELS)
    repeat: StrictInt = PydField(default=0, ge=0, le=MAX_POLICY_REPEAT)


class PolicyLevelPublic(BaseModel):
    after_seconds: int
    target: LevelTarget
    team_id: str | None
    team_name: str | None
    mode: LevelMode


class EscalationPolicyPublic(BaseModel):
    """``is_default``: the org has set no policy and this is the built-in one
    (``updated_at`` is then null)."""

    levels: list[PolicyLevelPublic]
    repeat: int
    is_default: bool
    updated_at: UtcTime | None


class ErrorBody(BaseModel):
    """Every 4xx and 5xx: a machine-readable ``error`` and a human ``detail``."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: str


class ClaimConflictBody(ErrorBody):
    claimed_by_id: str
    claimed_by_name: str
    claimed_at: str
