"""assessment attempts and the reconciler's index

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("handoffs") as batch_op:
        batch_op.add_column(
            sa.Column("assessment_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index("ix_handoffs_assessment_status", ["assessment_status"])


def downgrade() -> None:
    with op.batch_alter_table("handoffs") as batch_op:
        batch_op.drop_index("ix_handoffs_assessment_status")
        batch_op.drop_column("assessment_attempts")
