"""``shared.core.db``: JSON columns read back exactly as ``json.loads`` reads them;
the driver's connection in autocommit (a pipeline one transaction, committed at its end)."""

import json

import pytest
from sqlalchemy import Engine, text

from shared.core.db import driver_autocommit, load_json, session_scope
from shared.events.models import Event

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
