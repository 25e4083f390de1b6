"""people: everyone of an org who authenticated, with their last role and when
they were last seen (reassign's directory of seniors, GET /people)

Revision ID: 0012
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length)


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("org_id", _string(128), primary_key=True),
        sa.Column("id", _string(128), primary_key=True),
        sa.Column("name", _string(256), nullable=False),
        sa.Column("role", _string(16), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_people_org_last_seen", "people", ["org_id", "last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_people_org_last_seen", table_name="people")
    op.drop_table("people")
