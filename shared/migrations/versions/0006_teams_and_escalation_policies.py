"""teams (members, owned domains) and one escalation policy per org (its levels)

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _org_team_key(ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["org_id", "team_id"], ["teams.org_id", "teams.id"], ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", _string(36), nullable=False),
        sa.Column("org_id", _string(128), nullable=False),
        sa.Column("name", _string(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "name", name="uq_teams_org_name"),
        sa.UniqueConstraint("org_id", "id", name="uq_teams_org_id"),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", _string(36), nullable=False),
        sa.Column("user_id", _string(128), nullable=False),
        sa.Column("org_id", _string(128), nullable=False),
        sa.Column("name", _string(256), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id"),
        _org_team_key(ondelete="CASCADE"),
    )
    op.create_index("ix_team_members_user", "team_members", ["org_id", "user_id"])
    op.create_table(
        "team_domains",
        sa.Column("org_id", _string(128), nullable=False),
        sa.Column("domain", _string(64), nullable=False),
        sa.Column("team_id", _string(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "domain"),
        _org_team_key(ondelete="CASCADE"),
    )
    op.create_index("ix_team_domains_team", "team_domains", ["team_id"])
    op.create_table(
        "escalation_policies",
        sa.Column("org_id", _string(128), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id"),
    )
    op.create_table(
        "escalation_levels",
        sa.Column("org_id", _string(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("after_seconds", sa.Integer(), nullable=False),
        sa.Column("target", _string(16), nullable=False),
        sa.Column("team_id", _string(36), nullable=True),
        sa.Column("mode", _string(16), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "position"),
        sa.ForeignKeyConstraint(["org_id"], ["escalation_policies.org_id"], ondelete="CASCADE"),
        _org_team_key(),
    )
    op.create_index("ix_escalation_levels_team", "escalation_levels", ["team_id"])


def downgrade() -> None:
    op.drop_index("ix_escalation_levels_team", table_name="escalation_levels")
    op.drop_table("escalation_levels")
    op.drop_table("escalation_policies")
    op.drop_index("ix_team_domains_team", table_name="team_domains")
    op.drop_table("team_domains")
    op.drop_index("ix_team_members_user", table_name="team_members")
    op.drop_table("team_members")
    op.drop_table("teams")
