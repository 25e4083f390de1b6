"""Slack tables and the API's Slack models.

The bot token is stored as given (like a webhook's signing secret, the service
must be able to use it) and leaves the service only towards Slack: no answer,
log, event or error carries it.
"""

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from shared.core.models import Role, StrictModel, UtcTime, utc_column

#: Slack ids: a workspace ``T…`` (or an Enterprise Grid org ``E…``), a channel
#: ``C…``/``G…``, a user ``U…``/``W…``.
WorkspaceId = Annotated[str, PydField(pattern=r"^[TE][A-Z0-9]{2,31}$")]
ChannelId = Annotated[str, PydField(pattern=r"^[CG][A-Z0-9]{2,31}$")]
SlackUserId = Annotated[str, PydField(pattern=r"^[UW][A-Z0-9]{2,31}$")]
#: A bot token: ``xoxb-`` and Slack's characters; never echoed in an error.
BotToken = Annotated[str, PydField(pattern=r"^xoxb-[A-Za-z0-9-]{10,250}$", repr=False)]


# --- tables -----------------------------------------------------------------------


class SlackConnection(SQLModel, table=True):
    """One org's workspace. A workspace belongs to one org (unique index)."""

    __tablename__ = "slack_connections"
    __table_args__ = (sa.UniqueConstraint("workspace_id", name="uq_slack_connections_workspace"),)

    org_id: str = Field(primary_key=True, max_length=128)
    workspace_id: str = Field(max_length=32)
    bot_token: str = Field(max_length=256, repr=False)
    channel: str = Field(max_length=32)
    connected_by_id: str = Field(max_length=128)
    connected_at: datetime = utc_column()


class SlackLink(SQLModel, table=True):
    """A Slack user of the org's workspace acting as a person of the org.
    ``role`` is the person's role when the link was made (a claim from Slack
    needs senior or admin)."""

    __tablename__ = "slack_links"

    org_id: str = Field(primary_key=True, max_length=128)
    slack_user_id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(max_length=128)
    user_name: str = Field(max_length=256)
    role: str = Field(max_length=16)
    created_at: datetime = utc_column()


class SlackMessage(SQLModel, table=True):
    """The bot's message about one handoff in one channel, and whether Slack
    shows its current state.

    Every event of the handoff bumps ``version`` and makes the row due
    (``due_at``); a job renders the handoff as it is then, sends it, and
    records the version it rendered (``synced_version``): the row is done when
    that is still the latest. ``ts`` is Slack's id of the message once posted.
    ``enqueued_at`` is set while a job for it is in RQ (or being put there)."""

    __tablename__ = "slack_messages"
    __table_args__ = (
        sa.UniqueConstraint("handoff_id", "channel", name="uq_slack_messages_handoff_channel"),
        sa.Index("ix_slack_messages_due", "due_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    org_id: str = Field(max_length=128)
    handoff_id: str = Field(max_length=36)
    channel: str = Field(max_length=32)
    ts: str | None = Field(default=None, max_length=32)
    version: int = 1
    synced_version: int = 0
    due_at: datetime | None = utc_column(nullable=True)
    enqueued_at: datetime | None = utc_column(nullable=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=512)
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


# --- API models -------------------------------------------------------------------


class ConnectionBody(StrictModel):
    workspace_id: WorkspaceId
    bot_token: BotToken
    channel: ChannelId


class ConnectionPublic(BaseModel):
    """Never the token."""

    workspace_id: str
    channel: str
    connected_at: UtcTime


class LinkCode(StrictModel):
    code: str = PydField(min_length=1, max_length=128)


class LinkBody(StrictModel):
    """An admin's link. ``role`` (default ``senior``) is what a claim from Slack
    is checked against; the signed-in person's own link takes their role."""

    user_id: str = PydField(min_length=1, max_length=128)
    user_name: str = PydField(min_length=1, max_length=256)
    role: Role = Role.senior


class LinkPublic(BaseModel):
    slack_user_id: str
    user_id: str
    user_name: str
    role: Role
    created_at: UtcTime


class LinkList(BaseModel):
    items: list[LinkPublic]
