"""claim SLA bookkeeping on handoffs; request ids on events

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_BREACHED = sa.text("sla_breached_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("handoffs") as batch_op:
        for column in ("claim_deadline_at", "first_claimed_at", "cancelled_at", "sla_breached_at"):
            batch_op.add_column(sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_handoffs_sla_due",
        "handoffs",
        ["claim_deadline_at"],
        sqlite_where=NOT_BREACHED,
        postgresql_where=NOT_BREACHED,
    )
    with op.batch_alter_table("events") as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("request_id")
    op.drop_index("ix_handoffs_sla_due", table_name="handoffs")
    with op.batch_alter_table("handoffs") as batch_op:
        for column in ("sla_breached_at", "cancelled_at", "first_claimed_at", "claim_deadline_at"):
            batch_op.drop_column(column)
