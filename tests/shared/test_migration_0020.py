"""Migration 0020 on SQLite and PostgreSQL: the memory's partial index on
resolved handoffs, down to 0016 and up again, and the model declaring it too."""

from alembic import command
from sqlalchemy import inspect

from shared.core.db import make_engine
from shared.core.migrate import alembic_config
from shared.handoffs.models import Handoff


def handoff_indexes(url: str) -> set[str | None]:
    engine = make_engine(url)
    try:
        return {index["name"] for index in inspect(engine).get_indexes("handoffs")}
    finally:
        engine.dispose()


def test_resolved_index_downgrade_and_upgrade_again(migrated_url: str) -> None:
    config = alembic_config(migrated_url)
    assert "ix_handoffs_resolved" in handoff_indexes(migrated_url)
    command.downgrade(config, "0016")
    assert "ix_handoffs_resolved" not in handoff_indexes(migrated_url)
    command.upgrade(config, "head")
    assert "ix_handoffs_resolved" in handoff_indexes(migrated_url)


def test_the_model_declares_it() -> None:
    indexes = {index.name: index for index in Handoff.__table__.indexes}  # type: ignore[attr-defined]
    assert "ix_handoffs_resolved" in indexes
