"""``shared.core.db``: JSON columns read back exactly as ``json.loads`` reads them;
statements run on the driver's connection; the driver's connection in autocommit (a
pipeline one transaction, committed at its end)."""

import json

import pytest
from sqlalchemy import Engine, String, bindparam, cast, event, insert, text
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.core.db import (
    PREPARE_THRESHOLD,
    DriverStatement,
    driver_autocommit,
    load_json,
    make_engine,
    session_scope,
)
from shared.core.timeutil import utcnow
from shared.events.models import Event
from tests.conftest import empty_tables

DOCUMENTS = [
    '{"a": 1, "a": 2}',
    "[1e400, -0.0, 1.5e-07, 0.1, 12345678901234567890123]",
    '"\\ud83d\\ude00 \\u00e9"',
    '"\\ud83d alone"',  # a lone surrogate: pydantic-core refuses it, json.loads does not
    "null",
    '{"nested": {"list": [true, false, null, "x"]}}',
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_load_json_reads_what_json_loads_reads(document: str) -> None:
    assert load_json(document) == json.loads(document)
    assert load_json(document.encode()) == json.loads(document)


def test_a_json_column_with_a_lone_surrogate_reads_back(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.execute(
            text(
                "INSERT INTO events (org_id, seq, type, handoff_id, at, handoff)"
                " VALUES ('o', 1, 't', 'h', CURRENT_TIMESTAMP, :handoff)"
            ),
            {"handoff": '{"note": "\\ud83d alone"}'},
        )
        session.commit()
        stored = session.execute(Event.__table__.select()).one()  # type: ignore[attr-defined]
    assert stored.handoff == {"note": "\ud83d alone"}


def driver_statement(engine: Engine) -> DriverStatement:
    """Inserts an event (JSON ``handoff``), returning its seq and JSON as text."""
    events = Event.__table__  # type: ignore[attr-defined]
    statement = (
        insert(events)
        .values(
            org_id=bindparam("org_id"),
            seq=bindparam("seq"),
            type="t",
            handoff_id="h",
            at=bindparam("at", type_=events.c.at.type),
            handoff=bindparam("handoff", type_=events.c.handoff.type),
        )
        .returning(events.c.seq, cast(events.c.handoff, String))
    )
    return DriverStatement(statement, engine.dialect)


def test_a_driver_statement_returns_its_row_with_json_bound_as_sqlalchemy_binds_it(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)
    empty_tables(engine)
    statement = driver_statement(engine)
    values = {"org_id": "o", "seq": 1, "at": utcnow(), "handoff": {"note": "é", "n": [1]}}
    through_sqlalchemy: list[str] = []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        event.listen(
            connection, "before_cursor_execute", lambda *args: through_sqlalchemy.append(args[2])
        )
        row = statement.first(connection, values)
        assert row is not None and row[0] == 1
        assert json.loads(row[1]) == {"note": "é", "n": [1]}
    # It ran on the driver: SQLAlchemy's fallback (its error path) ran nothing.
    assert through_sqlalchemy == []
    engine.dispose()


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    empty_tables(engine)
    statement = driver_statement(engine)
    values = {"org_id": "o", "seq": 1, "at": utcnow(), "handoff": {}}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        statement.first(connection, values)
        with pytest.raises(IntegrityError):  # (org_id, seq) is unique
            statement.first(connection, values)
        assert connection.execute(text("SELECT count(*) FROM events")).scalar_one() == 1
    engine.dispose()


def test_a_pipeline_in_autocommit_is_one_transaction_and_set_config_holds_within(
    engine: Engine,
) -> None:
    """What the assessment job's start relies on (``start_attempt_pipelined``)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's driver")
    notices: list[str] = []
    with engine.connect() as connection:
        with driver_autocommit(connection) as raw, raw.pipeline():
            raw.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
            raw.execute("SELECT set_config('synchronous_commit', 'off', true)")
            query = "SELECT pg_current_xact_id()::text, current_setting('synchronous_commit')"
            first, second = raw.execute(query), raw.execute(query)
        one, two = first.fetchone(), second.fetchone()
        assert one is not None and one == two and one[1] == "off"  # the same transaction
        assert raw.autocommit is False
        after = connection.execute(text("SELECT current_setting('synchronous_commit')"))
        assert after.scalar_one() == "on"
    assert notices == []


def test_a_connection_left_mid_statement_is_never_pooled_in_autocommit(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's driver")
    with engine.connect() as connection:
        with pytest.raises(KeyboardInterrupt), driver_autocommit(connection) as raw:
            raw.pgconn.send_query(b"SELECT pg_sleep(0.05)")  # in flight: status ACTIVE
            raise KeyboardInterrupt  # e.g. RQ's job timeout, mid-wait
        assert connection.invalidated
    with engine.connect() as connection:
        assert connection.connection.driver_connection.autocommit is False  # type: ignore[union-attr]


@pytest.mark.parametrize("prepared", [False, True])
def test_statements_are_prepared_on_the_server_only_when_set(
    postgres_url: str, prepared: bool
) -> None:
    """``database_prepared_statements``: off (the default, safe behind PgBouncer) nothing
    is prepared; on, a query run more than psycopg's threshold times is."""
    engine = make_engine(postgres_url, prepared_statements=prepared)
    with engine.connect() as connection:
        for _ in range(PREPARE_THRESHOLD + 1):
            connection.execute(
                text("SELECT count(*) FROM events WHERE org_id = :org"), {"org": "o"}
            )
        names = connection.execute(text("SELECT name FROM pg_prepared_statements")).all()
    engine.dispose()
    assert bool(names) is prepared


def test_a_driver_statement_on_a_dropped_connection_fails_as_sqlalchemy_fails(
    postgres_url: str,
) -> None:
    """The fault lands in the driver's call: SQLAlchemy's ``OperationalError`` (the
    API's 503), the connection invalidated, and the pool's next connection works."""
    engine = make_engine(postgres_url, pre_ping=False)
    empty_tables(engine)
    statement = driver_statement(engine)
    values = {"org_id": "o", "seq": 1, "at": utcnow(), "handoff": {}}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError):
            statement.first(connection, values)
        assert connection.invalidated
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        assert statement.first(connection, values) is not None
    engine.dispose()
