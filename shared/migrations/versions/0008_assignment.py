"""assignment: the current level's team, the level and team of the first claim,
and when each senior was last assigned

Backfill: a handoff's ``escalation_team_id`` from its copied levels, and for a
handoff claimed before this revision, the level it was at (its level stays put
while claimed, so this is its first claim's level unless it was released and
claimed again).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("handoffs") as batch_op:
        batch_op.add_column(
            sa.Column("escalation_team_id", sqlmodel.sql.sqltypes.AutoString(64), nullable=True)
        )
        batch_op.add_column(sa.Column("first_claim_level", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("first_claim_team_id", sqlmodel.sql.sqltypes.AutoString(64), nullable=True)
        )
    op.create_table(
        "last_assignments",
        sa.Column("org_id", sqlmodel.sql.sqltypes.AutoString(128), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(128), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "user_id"),
    )
    _backfill()


#: The current level's team, read from the copied levels by the database itself
#: (one statement, not a row at a time: quick on a large table).
CURRENT_TEAM = {
    "postgresql": "CAST(escalation_levels AS json) -> escalation_level ->> 'team_id'",
    "sqlite": "json_extract(escalation_levels, '$[' || escalation_level || '].team_id')",
}


def _backfill() -> None:
    bind = op.get_bind()
    team = CURRENT_TEAM[bind.dialect.name]
    op.execute(
        f"UPDATE handoffs SET escalation_team_id = {team} WHERE escalation_levels IS NOT NULL"
    )
    op.execute(
        "UPDATE handoffs SET first_claim_level = escalation_level,"
        " first_claim_team_id = escalation_team_id WHERE first_claimed_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("last_assignments")
    with op.batch_alter_table("handoffs") as batch_op:
        for name in ("first_claim_team_id", "first_claim_level", "escalation_team_id"):
            batch_op.drop_column(name)
