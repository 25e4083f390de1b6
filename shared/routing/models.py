"""Teams, their members and domains, escalation policies and levels, and each
senior's last assignment: tables and API models."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from pydantic import (
    BaseModel,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from shared.core.models import Role, StrictModel, UtcTime, utc_column


class LastAssignment(SQLModel, table=True):
    """Each senior's last assignment: assign mode's tie-break (least recently
    assigned first, by the ``seq`` of their last ``handoff_assigned`` event)."""

    __tablename__ = "last_assignments"

    org_id: str = Field(primary_key=True, max_length=128)
    user_id: str = Field(primary_key=True, max_length=128)
    event_seq: int = Field(sa_type=sa.BigInteger)
    assigned_at: datetime = utc_column()


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
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


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


class EscalationPolicy(SQLModel, table=True):
    """An org's policy; its levels are ``escalation_levels`` rows. No row: the default."""

    __tablename__ = "escalation_policies"

    org_id: str = Field(primary_key=True, max_length=128)
    repeat: int
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


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
