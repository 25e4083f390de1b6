"""slack app: a workspace connection per org, links between Slack users and
people, the bot's messages (one per handoff and channel, with the version
Slack shows), and a team's optional Slack channel

Revision ID: 0017
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length)


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "slack_connections",
        sa.Column("org_id", _string(128), primary_key=True),
        sa.Column("workspace_id", _string(32), nullable=False),
        sa.Column("bot_token", _string(256), nullable=False),
        sa.Column("channel", _string(32), nullable=False),
        sa.Column("connected_by_id", _string(128), nullable=False),
        _time("connected_at"),
        sa.UniqueConstraint("workspace_id", name="uq_slack_connections_workspace"),
    )
    op.create_table(
        "slack_links",
        sa.Column("org_id", _string(128), primary_key=True),
        sa.Column("slack_user_id", _string(32), primary_key=True),
        sa.Column("user_id", _string(128), nullable=False),
        sa.Column("user_name", _string(256), nullable=False),
        sa.Column("role", _string(16), nullable=False),
        _time("created_at"),
    )
    op.create_table(
        "slack_messages",
        sa.Column("id", _string(36), primary_key=True),
        sa.Column("org_id", _string(128), nullable=False),
        sa.Column("handoff_id", _string(36), nullable=False),
        sa.Column("channel", _string(32), nullable=False),
        sa.Column("ts", _string(32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("synced_version", sa.Integer(), nullable=False),
        _time("due_at", nullable=True),
        _time("enqueued_at", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", _string(512), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        sa.UniqueConstraint("handoff_id", "channel", name="uq_slack_messages_handoff_channel"),
    )
    op.create_index("ix_slack_messages_due", "slack_messages", ["due_at"])
    with op.batch_alter_table("teams") as teams:
        teams.add_column(sa.Column("slack_channel", _string(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("teams") as teams:
        teams.drop_column("slack_channel")
    op.drop_index("ix_slack_messages_due", table_name="slack_messages")
    op.drop_table("slack_messages")
    op.drop_table("slack_links")
    op.drop_table("slack_connections")
