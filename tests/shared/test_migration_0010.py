"""Migration 0010 on SQLite and PostgreSQL: the relay's per-org index of
unpublished events replaces the id-only one, and back."""

from alembic import command
from sqlalchemy import inspect

from shared.core.db import make_engine
from shared.core.migrate import alembic_config


def event_indexes(url: str) -> dict[str, list[str | None]]:
    engine = make_engine(url)
    try:
        return {
            index["name"]: index["column_names"] for index in inspect(engine).get_indexes("events")
        }
    finally:
        engine.dispose()


def test_unpublished_index_by_org_downgrade_and_upgrade_again(migrated_url: str) -> None:
    config = alembic_config(migrated_url)
    assert event_indexes(migrated_url)["ix_events_unpublished_by_org"] == ["org_id", "seq"]
    assert "ix_events_unpublished" not in event_indexes(migrated_url)
    command.downgrade(config, "0009")
    assert event_indexes(migrated_url)["ix_events_unpublished"] == ["id"]
    assert "ix_events_unpublished_by_org" not in event_indexes(migrated_url)
    command.upgrade(config, "head")
    assert event_indexes(migrated_url)["ix_events_unpublished_by_org"] == ["org_id", "seq"]
