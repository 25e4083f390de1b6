"""audit log: one append-only row per configuration change

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("org_id", sqlmodel.sql.sqltypes.AutoString(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(128), nullable=False),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(256), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(64), nullable=False),
        sa.Column("target_id", sqlmodel.sql.sqltypes.AutoString(128), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
    )
    op.create_index("ix_audit_log_org", "audit_log", ["org_id", "id"])
    op.create_index("ix_audit_log_org_kind", "audit_log", ["org_id", "kind", "id"])
    op.create_index("ix_audit_log_org_actor", "audit_log", ["org_id", "actor_id", "id"])


def downgrade() -> None:
    op.drop_table("audit_log")
