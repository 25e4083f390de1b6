"""Migration 0012 on SQLite and PostgreSQL: the ``people`` table with its org-scoped
key and last-seen index, and back."""

from alembic import command
from sqlalchemy import inspect

from shared.core.db import make_engine
from shared.core.migrate import alembic_config


def people_table(url: str) -> dict[str, object] | None:
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        if "people" not in inspector.get_table_names():
            return None
        return {
            "key": inspector.get_pk_constraint("people")["constrained_columns"],
            "indexes": {i["name"]: i["column_names"] for i in inspector.get_indexes("people")},
        }
    finally:
        engine.dispose()


def test_people_downgrade_and_upgrade_again(migrated_url: str) -> None:
    config = alembic_config(migrated_url)
    expected = {
        "key": ["org_id", "id"],
        "indexes": {"ix_people_org_last_seen": ["org_id", "last_seen_at"]},
    }
    assert people_table(migrated_url) == expected
    command.downgrade(config, "0010")
    assert people_table(migrated_url) is None
    command.upgrade(config, "head")
    assert people_table(migrated_url) == expected
