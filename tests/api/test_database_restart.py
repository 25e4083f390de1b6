"""The API checks no pooled connection before use (no pre-ping, see
docs/decisions.md): when PostgreSQL drops every connection (a restart), at most
one request answers 503 ``database_unavailable`` and the next ones succeed; a
create whose own statement loses its connection answers 503 and writes nothing."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import text

from services.api.app import create_app
from shared.core.db import DriverStatement, make_engine
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


def test_a_dropped_pool_costs_creates_at_most_one_request(
    pg_client: TestClient, postgres_url: str, auth: TokenFactory
) -> None:
    """Creates go through their one statement on the driver's connection: a dropped
    connection there answers 503 as everywhere else, and writes nothing."""
    headers = auth("engineer")
    created = pg_client.post("/api/v1/handoffs", json=handoff_body("before"), headers=headers)
    assert created.status_code == 201
    assert drop_every_connection(postgres_url) > 0

    first = pg_client.post("/api/v1/handoffs", json=handoff_body("first"), headers=headers)
    if first.status_code != 201:
        assert_error(first, 503, "database_unavailable")
    for n in range(3):
        again = pg_client.post("/api/v1/handoffs", json=handoff_body(f"after-{n}"), headers=headers)
        assert again.status_code == 201, again.text
    listed = pg_client.get("/api/v1/handoffs", headers=auth("senior")).json()["items"]
    sessions = sorted(item["session_id"] for item in listed)
    expected = ["after-0", "after-1", "after-2", "before"]
    assert sessions == sorted(expected + (["first"] if first.status_code == 201 else []))


def test_a_connection_dropped_at_the_creates_statement_answers_503_and_writes_nothing(
    pg_client: TestClient, postgres_url: str, auth: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault lands in the create's own statement (on the driver's connection)."""
    run = DriverStatement.first
    dropped: list[int] = []

    def drop_then_run(statement: DriverStatement, connection: Any, parameters: Any) -> Any:
        if not dropped:
            pid = connection.connection.driver_connection.info.backend_pid
            admin = make_engine(postgres_url)
            with admin.connect() as admin_connection:
                admin_connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.dispose()
            dropped.append(pid)
        return run(statement, connection, parameters)

    monkeypatch.setattr(DriverStatement, "first", drop_then_run)
    headers = auth("engineer")
    refused = pg_client.post("/api/v1/handoffs", json=handoff_body("dropped"), headers=headers)
    assert dropped
    assert_error(refused, 503, "database_unavailable")
    again = pg_client.post("/api/v1/handoffs", json=handoff_body("again"), headers=headers)
    assert again.status_code == 201, again.text
    listed = pg_client.get("/api/v1/handoffs", headers=auth("senior")).json()["items"]
    assert [item["session_id"] for item in listed] == ["again"]
