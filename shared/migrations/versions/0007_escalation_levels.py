"""re-escalation: a handoff's copied levels, current level and loop, the next
move's deadline (partially indexed for the sweep) and the assignee; events' data

Existing handoffs keep today's behaviour: no levels (one level, all seniors),
level 0, no next move. Existing events have no data.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUE = sa.text("next_escalation_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("handoffs") as batch_op:
        batch_op.add_column(sa.Column("escalation_levels", sa.JSON(), nullable=True))
        for name in ("escalation_repeat", "escalation_level", "escalation_loop"):
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("next_escalation_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("assigned_to_id", sqlmodel.sql.sqltypes.AutoString(128), nullable=True)
        )
        batch_op.add_column(
            sa.Column("assigned_to_name", sqlmodel.sql.sqltypes.AutoString(256), nullable=True)
        )
    op.create_index(
        "ix_handoffs_escalation_due",
        "handoffs",
        ["next_escalation_at"],
        sqlite_where=DUE,
        postgresql_where=DUE,
    )
    with op.batch_alter_table("events") as batch_op:
        batch_op.add_column(sa.Column("data", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("data")
    op.drop_index("ix_handoffs_escalation_due", table_name="handoffs")
    with op.batch_alter_table("handoffs") as batch_op:
        for name in (
            "assigned_to_name",
            "assigned_to_id",
            "next_escalation_at",
            "escalation_loop",
            "escalation_level",
            "escalation_repeat",
            "escalation_levels",
        ):
            batch_op.drop_column(name)
