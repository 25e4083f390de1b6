"""webhooks: the receiver (``host:port``) the per-receiver cap counts by, and the
circuit breaker's state

Revision ID: 0013
Revises: 0017
"""

from collections.abc import Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def receiver_of(url: str) -> str:
    """``host:port`` of a URL, as ``shared.webhooks.circuit.receiver_of`` on the
    day of this migration."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme.lower() == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"[:300]


def upgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.add_column(
            sa.Column(
                "receiver",
                sqlmodel.sql.sqltypes.AutoString(300),
                nullable=False,
                server_default="",
            )
        )
        batch.add_column(
            sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("pause_seconds", sa.Float(), nullable=False, server_default="0"))
    connection = op.get_bind()
    webhooks = sa.table("webhooks", sa.column("id"), sa.column("url"), sa.column("receiver"))
    for row in connection.execute(sa.select(webhooks.c.id, webhooks.c.url)).all():
        connection.execute(
            webhooks.update().where(webhooks.c.id == row.id).values(receiver=receiver_of(row.url))
        )


def downgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        for column in (
            "pause_seconds",
            "paused_until",
            "failing_since",
            "consecutive_failures",
            "receiver",
        ):
            batch.drop_column(column)
