"""sla_settled_at: the claim SLA question is answered (breached, or claimed or
cancelled in time), so the sweep's index holds only open questions

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSETTLED = sa.text("sla_settled_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("handoffs") as batch_op:
        batch_op.add_column(sa.Column("sla_settled_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE handoffs SET sla_settled_at = CASE"
        " WHEN sla_breached_at IS NOT NULL THEN sla_breached_at"
        " WHEN first_claimed_at <= claim_deadline_at THEN first_claimed_at"
        " WHEN cancelled_at <= claim_deadline_at THEN cancelled_at END"
    )
    op.drop_index("ix_handoffs_sla_due", table_name="handoffs")
    op.create_index(
        "ix_handoffs_sla_due",
        "handoffs",
        ["claim_deadline_at"],
        sqlite_where=UNSETTLED,
        postgresql_where=UNSETTLED,
    )


def downgrade() -> None:
    op.drop_index("ix_handoffs_sla_due", table_name="handoffs")
    op.create_index(
        "ix_handoffs_sla_due",
        "handoffs",
        ["claim_deadline_at"],
        sqlite_where=sa.text("sla_breached_at IS NULL"),
        postgresql_where=sa.text("sla_breached_at IS NULL"),
    )
    with op.batch_alter_table("handoffs") as batch_op:
        batch_op.drop_column("sla_settled_at")
