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
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "user_id"),
    )
    _backfill()


def _backfill() -> None:
    handoffs = sa.table(
        "handoffs",
        sa.column("id", sa.String),
        sa.column("escalation_levels", sa.JSON),
        sa.column("escalation_level", sa.Integer),
        sa.column("first_claimed_at", sa.DateTime),
        sa.column("escalation_team_id", sa.String),
        sa.column("first_claim_level", sa.Integer),
        sa.column("first_claim_team_id", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            handoffs.c.id,
            handoffs.c.escalation_levels,
            handoffs.c.escalation_level,
            handoffs.c.first_claimed_at,
        ).where(
            sa.or_(
                handoffs.c.escalation_levels.is_not(None), handoffs.c.first_claimed_at.is_not(None)
            )
        )
    ).all()
    for handoff_id, levels, level, first_claimed_at in rows:
        current = (levels or [])[level] if level < len(levels or []) else {}
        team_id = current.get("team_id")
        claimed = first_claimed_at is not None
        bind.execute(
            handoffs.update()
            .where(handoffs.c.id == handoff_id)
            .values(
                escalation_team_id=team_id,
                first_claim_level=level if claimed else None,
                first_claim_team_id=team_id if claimed else None,
            )
        )


def downgrade() -> None:
    op.drop_table("last_assignments")
    with op.batch_alter_table("handoffs") as batch_op:
        for name in ("first_claim_team_id", "first_claim_level", "escalation_team_id"):
            batch_op.drop_column(name)
