"""redaction: handoffs.redactions, and each org's redaction settings

Revision ID: 0016
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: no table rewrite on PostgreSQL 11+, none on SQLite.
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(sa.Column("redactions", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "redaction_settings",
        sa.Column("org_id", sa.String(length=128), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("patterns", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("redaction_settings")
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("redactions")
