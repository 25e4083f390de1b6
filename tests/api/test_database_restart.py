"""The API checks no pooled connection before use (no pre-ping, see
docs/decisions.md): when PostgreSQL drops every connection (a restart), at most
one request answers 503 ``database_unavailable`` and the next ones succeed."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import text

from services.api.app import create_app
from shared.core.db import make_engine
from shared.core.settings import Settings
from testkit.samples import handoff_body
from tests.api.helpers import assert_error
from tests.conftest import (
    GENEROUS_LIMITS,
    REDIS_URL,
    TEST_SECRET,
    TokenFactory,
    empty_tables,
)


@pytest.fixture
def pg_client(postgres_url: str, redis: Redis) -> Iterator[TestClient]:
    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    settings = Settings(
        database_url=postgres_url, redis_url=REDIS_URL, jwt_secret=TEST_SECRET, **GENEROUS_LIMITS
    )
    with TestClient(create_app(settings)) as client:
        yield client


def drop_every_connection(database_url: str) -> int:
    """Terminates every server connection to the database (as a restart would)."""
    admin = make_engine(database_url)
    with admin.connect() as connection:
        dropped = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    admin.dispose()
    return int(dropped)


def test_a_dropped_pool_costs_at_most_one_request(
    pg_client: TestClient, postgres_url: str, auth: TokenFactory
) -> None:
    headers = auth("senior")
    created = pg_client.post("/api/v1/handoffs", json=handoff_body(), headers=auth("engineer"))
    assert created.status_code == 201
    path = f"/api/v1/handoffs/{created.json()['id']}"
    assert pg_client.get(path, headers=headers).status_code == 200
    assert drop_every_connection(postgres_url) > 0

    first = pg_client.get(path, headers=headers)
    if first.status_code != 200:
        assert_error(first, 503, "database_unavailable")
    for _ in range(3):
        assert pg_client.get(path, headers=headers).status_code == 200
    assert pg_client.get("/api/v1/handoffs", headers=headers).status_code == 200
