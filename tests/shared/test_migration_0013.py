"""Migration 0013 on SQLite and PostgreSQL: a webhook made before it gets its
receiver (``host:port``) and a closed breaker; down and up again cleanly."""

from alembic import command
from sqlalchemy import inspect, text

from shared.core.db import make_engine
from shared.core.migrate import alembic_config

COLUMNS = {"receiver", "consecutive_failures", "failing_since", "paused_until", "pause_seconds"}


def test_existing_webhooks_get_their_receiver_and_a_closed_breaker(migrated_url: str) -> None:
    config = alembic_config(migrated_url)
    engine = make_engine(migrated_url)
    try:
        command.downgrade(config, "0017")
        columns = {column["name"] for column in inspect(engine).get_columns("webhooks")}
        assert not COLUMNS & columns
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO webhooks (id, org_id, url, format, description, enabled, secret,"
                    " created_at, updated_at) VALUES ('w-1', 'acme', 'https://Hooks.Example.com/x',"
                    " 'standard', '', true, 's', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        command.upgrade(config, "head")
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT receiver, consecutive_failures, paused_until, pause_seconds"
                    " FROM webhooks WHERE id = 'w-1'"
                )
            ).one()
        assert tuple(row) == ("hooks.example.com:443", 0, None, 0)
    finally:
        engine.dispose()
