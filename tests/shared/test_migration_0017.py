"""Migration 0017 on SQLite and PostgreSQL: the Slack tables and the teams'
``slack_channel`` column, down to 0015 (teams keep their rows) and up again."""

from alembic import command
from sqlalchemy import inspect, text

from shared.core.db import make_engine
from shared.core.migrate import alembic_config

SLACK_TABLES = {"slack_connections", "slack_links", "slack_messages"}


def shape(url: str) -> tuple[set[str], set[str]]:
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        return tables & SLACK_TABLES, {column["name"] for column in inspector.get_columns("teams")}
    finally:
        engine.dispose()


def test_slack_tables_downgrade_and_upgrade_again(migrated_url: str) -> None:
    config = alembic_config(migrated_url)
    tables, team_columns = shape(migrated_url)
    assert tables == SLACK_TABLES and "slack_channel" in team_columns
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO teams (id, org_id, name, slack_channel, created_at, updated_at)"
                " VALUES ('t-1', 'acme', 'Platform', 'C0PLATFORM', :now, :now)"
            ),
            {"now": "2026-12-07 12:00:00+00:00"},
        )
    engine.dispose()
    command.downgrade(config, "0015")
    tables, team_columns = shape(migrated_url)
    assert tables == set() and "slack_channel" not in team_columns
    command.upgrade(config, "head")
    tables, team_columns = shape(migrated_url)
    assert tables == SLACK_TABLES and "slack_channel" in team_columns
    engine = make_engine(migrated_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM teams")).scalars().all() == ["Platform"]
    engine.dispose()
