"""PostgreSQL: the worker's store as one statement (shared/assessments/one_statement.py).

It writes what the session's path writes (the event's stored and published
JSON the same as from the ORM row), only on the transition to ready, and
nothing when the row changed since the job's count: then the session's path
stores, with the event carrying the row as it is."""

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from services.worker.tasks import _store
from shared.assessments.one_statement import store_if_unchanged
from shared.assessments.service import Counted, recent_resolutions, start_attempt_pipelined
from shared.events.models import Event
from shared.events.record import event_json
from shared.handoffs.models import AssessmentData, ConfidenceTier, Handoff
from shared.handoffs.views import handoff_summary
from tests.conftest import TokenFactory, handoff_body

ASSESSMENT = AssessmentData(
    summary="Checkout pods are OOMKilled.",
    likely_causes=["Memory limit too low"],
    suggested_steps=["Raise the memory limit"],
    confidence=ConfidenceTier.medium,
    generator="test",
    generated_at="2026-12-07T21:00:00.000000Z",
)
NOW = datetime(2026, 12, 7, 21, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def told(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the store tells the outbox, one dict per commit."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "shared.assessments.one_statement.committed_outside_session",
        lambda _bind, **kwargs: calls.append(kwargs),
    )
    return calls


def create(client: TestClient, auth: TokenFactory, engine: Engine) -> str:
    if engine.dialect.name != "postgresql":
        pytest.skip("one statement is the PostgreSQL path")
    response = client.post("/api/v1/handoffs", json=handoff_body(), headers=auth("engineer"))
    assert response.status_code == 201
    return str(response.json()["id"])


def counted(engine: Engine, handoff_id: str) -> Counted:
    with engine.connect() as connection:
        started = start_attempt_pipelined(connection, handoff_id)
    assert started is not None
    return started[2]


def store(engine: Engine, handoff_id: str, row: Counted) -> bool:
    with engine.connect() as connection:
        return store_if_unchanged(
            connection,
            handoff_id=handoff_id,
            counted=row,
            assessment=ASSESSMENT.model_dump(mode="json"),
            now=NOW,
        )


def ready_events(engine: Engine, handoff_id: str) -> list[Event]:
    with Session(engine) as session:
        statement = select(Event).where(
            Event.handoff_id == handoff_id, Event.type == "handoff_assessment_ready"
        )
        return list(session.exec(statement.order_by(col(Event.seq))))


def handoff(engine: Engine, handoff_id: str) -> Handoff:
    with Session(engine) as session:
        found = session.get(Handoff, handoff_id)
        assert found is not None
        return found


def test_it_writes_what_the_session_path_writes(
    client: TestClient, auth: TokenFactory, engine: Engine, told: list[dict[str, Any]]
) -> None:
    handoff_id = create(client, auth, engine)
    assert store(engine, handoff_id, counted(engine, handoff_id))
    stored = handoff(engine, handoff_id)
    assert stored.assessment_status == "ready"
    assert stored.ai_assessment_data == ASSESSMENT.model_dump(mode="json")
    assert stored.updated_at == NOW
    [event] = ready_events(engine, handoff_id)
    assert event.handoff == handoff_summary(stored)  # the summary of the row as stored
    assert (event.at, event.actor_id, event.data) == (NOW, None, None)
    [call] = told
    assert (call["seq"], call["event_id"]) == (event.seq, event.id)
    assert call["event_json"] == event_json(event)  # published as replayed, to the byte
    assert (call["deliveries"], call["slack_due"]) == (False, False)


def test_a_second_store_writes_nothing(
    client: TestClient, auth: TokenFactory, engine: Engine, told: list[dict[str, Any]]
) -> None:
    handoff_id = create(client, auth, engine)
    row = counted(engine, handoff_id)
    assert store(engine, handoff_id, row)
    assert not store(engine, handoff_id, row)
    assert len(ready_events(engine, handoff_id)) == 1 and len(told) == 1


def test_a_row_changed_since_the_count_goes_the_session_way(
    client: TestClient, auth: TokenFactory, engine: Engine, told: list[dict[str, Any]]
) -> None:
    handoff_id = create(client, auth, engine)
    row = counted(engine, handoff_id)
    with engine.begin() as connection:  # claimed while the assessor ran
        connection.execute(
            text(
                "UPDATE handoffs SET status = 'claimed', claimed_by_id = 'u-9',"
                " claimed_by_name = 'Dana Senior', claimed_at = :at WHERE id = :id"
            ),
            {"at": NOW, "id": handoff_id},
        )
    assert not store(engine, handoff_id, row)
    assert ready_events(engine, handoff_id) == [] and told == []
    with engine.connect() as connection:
        _store(connection, handoff_id, row, ASSESSMENT, NOW)
    [event] = ready_events(engine, handoff_id)
    assert event.handoff["status"] == "claimed"
    assert event.handoff["claimed_by_id"] == "u-9"
    assert event.handoff == handoff_summary(handoff(engine, handoff_id))


def test_the_handoffs_slack_messages_become_due(
    client: TestClient, auth: TokenFactory, engine: Engine, told: list[dict[str, Any]]
) -> None:
    handoff_id = create(client, auth, engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO slack_messages (id, org_id, handoff_id, channel, version,"
                " synced_version, attempts, created_at, updated_at)"
                " VALUES ('m-1', 'acme', :id, 'C0ORG', 1, 1, 0, :at, :at)"
            ),
            {"id": handoff_id, "at": datetime(2026, 12, 7, 20, 0, tzinfo=UTC)},
        )
    assert store(engine, handoff_id, counted(engine, handoff_id))
    with engine.connect() as connection:
        version, due_at, updated_at = connection.execute(
            text("SELECT version, due_at, updated_at FROM slack_messages WHERE id = 'm-1'")
        ).one()
    assert (version, due_at, updated_at) == (2, NOW, NOW)
    assert told[0]["slack_due"] is True


def test_a_connection_the_database_dropped_counts_on_a_new_one(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    """The start is the job's first statement (no pre-ping): it runs once more on a
    new connection, and no connection is left in autocommit."""
    handoff_id = create(client, auth, engine)
    with engine.connect() as connection:
        dropped = connection.connection.driver_connection
        assert dropped is not None
        with engine.connect() as other:
            other.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped.info.backend_pid}
            )
        started = start_attempt_pipelined(connection, handoff_id)
        assert started is not None and started[0].assessment_attempts == 1
        renewed = connection.connection.driver_connection
        assert renewed is not None and renewed is not dropped
        assert renewed.autocommit is False


def test_the_start_reads_the_same_memory_as_the_session_latest_first(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    """The count and the memory are one statement (its memory a JSON array): the
    same resolved handoffs, in the same order and form, as ``recent_resolutions``."""
    resolved = []
    for hour, notes in ((3, "fixed at 3"), (1, None), (2, "fixed at 2")):
        resolved.append(create(client, auth, engine))  # one open handoff per session
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE handoffs SET status = 'resolved', resolved_at = :at,"
                    " resolution_notes = :notes WHERE id = :id"
                ),
                {"id": resolved[-1], "at": datetime(2026, 12, 7, hour, tzinfo=UTC), "notes": notes},
            )
    handoff_id = create(client, auth, engine)
    with engine.connect() as connection:
        started = start_attempt_pipelined(connection, handoff_id)
    assert started is not None
    attempt, past, _ = started
    with Session(engine) as session:
        org_id = session.exec(select(Handoff.org_id).where(Handoff.id == handoff_id)).one()
        assert past == recent_resolutions(session=session, org_id=org_id)
    assert [p.id for p in past] == [resolved[0], resolved[2], resolved[1]]
    assert past[2].resolution_notes is None and isinstance(past[0].snapshot, dict)
    assert (attempt.id, attempt.org_id, attempt.assessment_attempts) == (handoff_id, org_id, 1)
