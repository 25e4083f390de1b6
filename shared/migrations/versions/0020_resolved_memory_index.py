"""handoffs: a partial index for the assessor's memory (an org's latest resolutions)

The memory read (``shared.assessments.service._memory``: an org's resolved
handoffs, newest ``resolved_at`` first, at most 200) went through
``ix_handoffs_queue`` and filtered every handoff of the org; with this index it
reads at most 200 entries, whatever the org's history.

Revision ID: 0020
Revises: 0016 (the chain's head: the numbers are not its order)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESOLVED = sa.text("status = 'resolved'")


def upgrade() -> None:
    op.create_index(
        "ix_handoffs_resolved",
        "handoffs",
        ["org_id", sa.text("resolved_at DESC")],
        sqlite_where=RESOLVED,
        postgresql_where=RESOLVED,
    )


def downgrade() -> None:
    op.drop_index("ix_handoffs_resolved", table_name="handoffs")
