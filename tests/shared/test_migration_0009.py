"""Migration 0009 on SQLite and PostgreSQL: the webhook tables come and go
cleanly, events recorded on a database without subscriptions make no
delivery, and after an upgrade an event reaches a subscription made then."""

from alembic import command
from sqlalchemy import inspect, text

from shared.audit import SYSTEM
from shared.auth.tokens import Principal
from shared.core.db import make_engine, session_scope
from shared.core.migrate import alembic_config
from shared.core.models import Role
from shared.handoffs.lifecycle import create_handoff
from shared.handoffs.models import HandoffCreate
from shared.webhooks import subscriptions
from shared.webhooks.models import WebhookCreate
from tests.conftest import handoff_body

TABLES = {"webhooks", "webhook_event_types", "webhook_deliveries"}


def test_webhook_tables_downgrade_and_upgrade_again(migrated_url: str) -> None:
    config = alembic_config(migrated_url)
    engine = make_engine(migrated_url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    command.downgrade(config, "0008")
    assert not TABLES & set(inspect(engine).get_table_names())
    command.upgrade(config, "head")
    principal = Principal(user_id="u-1", name="Jo", role=Role.engineer, org_id="acme")
    with session_scope(engine) as session:
        create_handoff(
            session=session,
            principal=principal,
            body=HandoffCreate.model_validate(handoff_body("before")),
            claim_sla_seconds=300,
        )
        subscriptions.create_webhook(
            actor=SYSTEM,
            session=session,
            org_id="acme",
            body=WebhookCreate(url="https://93.184.215.14/hook"),
            allow_private=False,
            max_webhooks=20,
        )
        create_handoff(
            session=session,
            principal=principal,
            body=HandoffCreate.model_validate(handoff_body("after")),
            claim_sla_seconds=300,
        )
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT event_seq, event_type, status FROM webhook_deliveries")
        ).all()
    assert [tuple(row) for row in rows] == [(2, "handoff_created", "pending")]
    if engine.dialect.name == "sqlite":  # partial indexes keep their WHERE
        with engine.connect() as connection:
            sql = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_webhook_deliveries_due'")
            ).scalar_one()
        assert "WHERE status = 'pending' AND enqueued_at IS NULL" in sql
    engine.dispose()
