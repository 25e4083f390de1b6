"""``shared.core.db``: JSON columns read back exactly as ``json.loads`` reads them;
statements run on the driver's connection."""

import json

import pytest
from sqlalchemy import Engine, String, bindparam, cast, insert, text
from sqlalchemy.exc import IntegrityError

from shared.core.db import DriverStatement, load_json, make_engine, session_scope
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
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = statement.first(connection, values)
        assert row is not None and row[0] == 1
        assert json.loads(row[1]) == {"note": "é", "n": [1]}
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
