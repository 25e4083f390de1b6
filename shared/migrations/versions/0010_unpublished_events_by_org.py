"""the outbox relay reads unpublished events per org: index (org_id, seq)

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPUBLISHED = sa.text("published_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_events_unpublished_by_org",
        "events",
        ["org_id", "seq"],
        sqlite_where=UNPUBLISHED,
        postgresql_where=UNPUBLISHED,
    )
    op.drop_index("ix_events_unpublished", table_name="events")


def downgrade() -> None:
    op.create_index(
        "ix_events_unpublished",
        "events",
        ["id"],
        sqlite_where=UNPUBLISHED,
        postgresql_where=UNPUBLISHED,
    )
    op.drop_index("ix_events_unpublished_by_org", table_name="events")
