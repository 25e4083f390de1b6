"""webhooks: subscriptions, their event types (rows, so matching is a join)
and deliveries (created with each event, partially indexed for the dispatcher
and the reconciler)

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUE = sa.text("status = 'pending' AND enqueued_at IS NULL")
ENQUEUED = sa.text("status = 'pending' AND enqueued_at IS NOT NULL")


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length)


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _webhook_key() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["org_id", "webhook_id"], ["webhooks.org_id", "webhooks.id"], ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", _string(36), primary_key=True),
        sa.Column("org_id", _string(128), nullable=False),
        sa.Column("url", _string(2048), nullable=False),
        sa.Column("format", _string(16), nullable=False),
        sa.Column("description", _string(500), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", _string(256), nullable=True),
        sa.Column("secret", _string(128), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.UniqueConstraint("org_id", "id", name="uq_webhooks_org_id"),
    )
    op.create_index("ix_webhooks_org_created", "webhooks", ["org_id", "created_at", "id"])
    op.create_table(
        "webhook_event_types",
        sa.Column("webhook_id", _string(36), primary_key=True),
        sa.Column("event_type", _string(64), primary_key=True),
        sa.Column("org_id", _string(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _webhook_key(),
    )
    op.create_index("ix_webhook_event_types_match", "webhook_event_types", ["org_id", "event_type"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _string(36), primary_key=True),
        sa.Column("org_id", _string(128), nullable=False),
        sa.Column("webhook_id", _string(36), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=True),
        sa.Column("event_type", _string(64), nullable=False),
        sa.Column("status", _string(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("round_attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", _string(512), nullable=True),
        _time("next_attempt_at", nullable=True),
        _time("enqueued_at", nullable=True),
        _time("delivered_at", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _webhook_key(),
    )
    op.create_index(
        "ix_webhook_deliveries_log", "webhook_deliveries", ["webhook_id", "created_at", "id"]
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        sqlite_where=DUE,
        postgresql_where=DUE,
    )
    op.create_index(
        "ix_webhook_deliveries_enqueued",
        "webhook_deliveries",
        ["enqueued_at"],
        sqlite_where=ENQUEUED,
        postgresql_where=ENQUEUED,
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_event_types")
    op.drop_table("webhooks")
