"""partial index for the outbox relay's "unpublished events" query

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPUBLISHED = sa.text("published_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_events_unpublished",
        "events",
        ["id"],
        sqlite_where=UNPUBLISHED,
        postgresql_where=UNPUBLISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_events_unpublished", table_name="events")
