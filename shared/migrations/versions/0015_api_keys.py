"""api_keys: machine clients' keys, stored as SHA-256 digests

Revision ID: 0015
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0015"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length)


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", _string(36), primary_key=True),
        sa.Column("org_id", _string(128), nullable=False),
        sa.Column("name", _string(64), nullable=False),
        sa.Column("role", _string(16), nullable=False),
        sa.Column("prefix", _string(16), nullable=False),
        sa.Column("digest", _string(64), nullable=False),
        sa.Column("created_by_id", _string(128), nullable=False),
        _time("created_at"),
        _time("expires_at", nullable=True),
        _time("last_used_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.UniqueConstraint("digest", name="uq_api_keys_digest"),
    )
    op.create_index("ix_api_keys_org_created", "api_keys", ["org_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_org_created", table_name="api_keys")
    op.drop_table("api_keys")
