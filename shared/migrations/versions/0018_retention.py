"""retention: per-org settings, and handoffs marked when their content is purged

Revision ID: 0018
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLOSED_UNPURGED = sa.text("status IN ('resolved', 'cancelled') AND purged_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "org_retention",
        sa.Column("org_id", sqlmodel.sql.sqltypes.AutoString(128), primary_key=True),
        sa.Column("handoff_content_days", sa.Integer(), nullable=False),
        sa.Column("event_days", sa.Integer(), nullable=False),
        sa.Column("delivery_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_handoffs_purge_due",
        "handoffs",
        ["updated_at"],
        sqlite_where=CLOSED_UNPURGED,
        postgresql_where=CLOSED_UNPURGED,
    )


def downgrade() -> None:
    op.drop_index("ix_handoffs_purge_due", table_name="handoffs")
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("purged_at")
    op.drop_table("org_retention")
