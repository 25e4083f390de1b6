"""Fixtures of the shared-code tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command

from shared.core.migrate import alembic_config
from testkit.pg import fresh_database
from tests.conftest import PG_ADMIN_URL


@pytest.fixture(params=["sqlite", "postgres"])
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at head, for this test alone (the migration tests step it down and up)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migration.db'}"
        command.upgrade(alembic_config(url), "head")
        yield url
    else:
        with fresh_database(PG_ADMIN_URL, prefix="escalations_migration") as url:
            yield url
