"""Retention on SQLite and PostgreSQL: the org's settings, an admin's purge of one
handoff, and the sweep with rows backdated (the clock is the rows' times): it
purges exactly what is due, twice-run and two workers at once purge nothing
twice, and analytics over the purged period do not change."""

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from shared.core.settings import Settings
from shared.core.timeutil import utcnow
from shared.retention.sweep import RetentionReport, sweep_retention
from tests.api.helpers import HANDOFFS, assert_error, create, get, history
from tests.conftest import TokenFactory

RETENTION = "/api/v1/settings/retention"
#: Text typed while troubleshooting, in every field a purge empties.
TYPED = "the deploy key is in /etc/typed-while-troubleshooting"
ANALYTICS = "/api/v1/analytics/escalations"


def typed_body(session_id: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "engineer_notes": f"notes: {TYPED}",
        "snapshot": {
            "problem_summary": "checkout pods crash-loop after the deploy",
            "problem_domain": "kubernetes",
            "status": "stuck",
            "step_count": 4,
            "confidence_tier": "low",
            "tried_steps": [{"description": f"step: {TYPED}", "outcome": f"outcome: {TYPED}"}],
            "transcript": [{"role": "user", "content": f"transcript: {TYPED}"}],
        },
    }


def resolved(client: TestClient, auth: TokenFactory, session_id: str) -> dict[str, Any]:
    """A handoff created, claimed, reassigned with a note and resolved, all with typed text."""
    response = client.post(HANDOFFS, json=typed_body(session_id), headers=auth("engineer"))
    assert response.status_code == 201, response.text
    url = f"{HANDOFFS}/{response.json()['id']}"
    admin = auth("admin")
    assert client.post(f"{url}/claim", headers=admin).status_code == 200
    reassign = {"to_id": "admin-1", "to_name": "Admin One", "note": f"note: {TYPED}"}
    client.post(f"{url}/reassign", json=reassign, headers=admin)  # a note in an event, if taken
    done = client.post(f"{url}/resolve", json={"resolution_notes": f"fix: {TYPED}"}, headers=admin)
    assert done.status_code == 200, done.text
    return done.json()


def stored_text(engine: Engine) -> str:
    """Every row of the tables that hold a handoff or a copy of one, as text."""
    with engine.connect() as connection:
        rows = [
            [str(value) for value in row]
            for table in ("handoffs", "events", "idempotency_keys")
            for row in connection.execute(text(f"SELECT * FROM {table}"))
        ]
    return json.dumps(rows)


def backdate(engine: Engine, handoff_id: str, days: float) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE handoffs SET updated_at = :at WHERE id = :id"),
            {"at": utcnow() - timedelta(days=days), "id": handoff_id},
        )


# --- settings -------------------------------------------------------------------


def test_settings_default_to_the_configuration_then_are_the_orgs_own(
    client: TestClient, auth: TokenFactory
) -> None:
    default = client.get(RETENTION, headers=auth("admin"))
    assert default.status_code == 200, default.text
    assert default.json() == {
        "handoff_content_days": 0,
        "event_days": 0,
        "delivery_days": 0,
        "is_default": True,
        "updated_at": None,
    }
    days = {"handoff_content_days": 30, "event_days": 90, "delivery_days": 7}
    put = client.put(RETENTION, json=days, headers=auth("admin"))
    assert put.status_code == 200, put.text
    assert client.get(RETENTION, headers=auth("admin")).json() | {"updated_at": None} == {
        **days,
        "is_default": False,
        "updated_at": None,
    }
    other_org = client.get(RETENTION, headers=auth("admin", org="globex")).json()
    assert other_org["is_default"] is True


@pytest.mark.parametrize("role", ["engineer", "senior"])
def test_only_admins_read_or_change_retention(
    client: TestClient, auth: TokenFactory, role: str
) -> None:
    assert_error(client.get(RETENTION, headers=auth(role)), 403)
    days = {"handoff_content_days": 1, "event_days": 1, "delivery_days": 1}
    assert_error(client.put(RETENTION, json=days, headers=auth(role)), 403)
    assert client.get(RETENTION, headers=auth("admin")).json()["is_default"] is True


@pytest.mark.parametrize("bad", [True, "5", -1, 36_501, 1.5, None])
def test_days_are_whole_numbers_in_range(client: TestClient, auth: TokenFactory, bad: Any) -> None:
    days = {"handoff_content_days": bad, "event_days": 1, "delivery_days": 1}
    assert_error(client.put(RETENTION, json=days, headers=auth("admin")), 422)
    assert client.get(RETENTION, headers=auth("admin")).json()["is_default"] is True


# --- an admin's purge -------------------------------------------------------------


def test_an_admins_purge_removes_the_content_everywhere_and_keeps_the_rest(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    handoff = resolved(client, auth, "sess-purge")
    assert TYPED in stored_text(engine)
    purged = client.post(f"{HANDOFFS}/{handoff['id']}/purge", headers=auth("admin"))
    assert purged.status_code == 200, purged.text
    body = purged.json()
    assert body["purged_at"] is not None
    assert body["snapshot"]["tried_steps"] == [] and body["snapshot"]["transcript"] is None
    assert (body["engineer_notes"], body["resolution_notes"]) == ("", None)
    kept = ("status", "created_at", "claimed_at", "resolved_at", "claimed_by_id", "priority")
    assert {key: body[key] for key in kept} == {key: handoff[key] for key in kept}
    assert body["snapshot"]["problem_summary"] == handoff["snapshot"]["problem_summary"]
    assert TYPED not in stored_text(engine)
    assert get(client, auth("senior"), handoff["id"]) == body  # no process serves the old one
    assert TYPED not in json.dumps(history(client, auth("senior"), handoff["id"]))
    again = client.post(f"{HANDOFFS}/{handoff['id']}/purge", headers=auth("admin"))
    assert again.status_code == 200 and again.json() == body


def test_an_open_handoff_is_not_purged(client: TestClient, auth: TokenFactory) -> None:
    handoff = create(client, auth("engineer"))
    assert_error(client.post(f"{HANDOFFS}/{handoff['id']}/purge", headers=auth("admin")), 409)
    assert get(client, auth("admin"), handoff["id"])["purged_at"] is None


@pytest.mark.parametrize("role", ["engineer", "senior"])
def test_only_admins_purge(client: TestClient, auth: TokenFactory, role: str) -> None:
    handoff = resolved(client, auth, "sess-role")
    assert_error(client.post(f"{HANDOFFS}/{handoff['id']}/purge", headers=auth(role)), 403)
    foreign = client.post(f"{HANDOFFS}/{handoff['id']}/purge", headers=auth("admin", org="globex"))
    assert_error(foreign, 404)
    assert get(client, auth("admin"), handoff["id"])["purged_at"] is None


# --- the sweep --------------------------------------------------------------------


def test_the_sweep_purges_exactly_what_is_due_once_and_analytics_do_not_change(
    client: TestClient, auth: TokenFactory, engine: Engine, settings: Settings
) -> None:
    days = {"handoff_content_days": 1, "event_days": 0, "delivery_days": 0}
    assert client.put(RETENTION, json=days, headers=auth("admin")).status_code == 200
    due = [resolved(client, auth, f"sess-due-{n}")["id"] for n in range(3)]
    recent = resolved(client, auth, "sess-recent")["id"]
    still_open = create(client, auth("engineer"), session_id="sess-open")["id"]
    other_org = client.post(
        HANDOFFS, json=typed_body("sess-globex"), headers=auth("engineer", org="globex")
    )
    for handoff_id in [*due, still_open, other_org.json()["id"]]:
        backdate(engine, handoff_id, days=2)
    backdate(engine, recent, days=0.5)
    window = {"since": (utcnow() - timedelta(days=3)).isoformat(), "until": utcnow().isoformat()}
    before = client.get(ANALYTICS, params=window, headers=auth("admin")).json()

    assert sweep_retention(engine=engine, settings=settings) == RetentionReport(purged_handoffs=3)
    assert sweep_retention(engine=engine, settings=settings) == RetentionReport()

    purged = {
        h: get(client, auth("admin"), h)["purged_at"] is not None
        for h in [*due, recent, still_open]
    }
    assert purged == {**dict.fromkeys(due, True), recent: False, still_open: False}
    foreign = get(client, auth("admin", org="globex"), other_org.json()["id"])
    assert foreign["purged_at"] is None  # globex keeps the default: for ever
    assert client.get(ANALYTICS, params=window, headers=auth("admin")).json() == before


def test_two_workers_sweeping_at_once_purge_each_handoff_once(
    client: TestClient, auth: TokenFactory, engine: Engine, settings: Settings
) -> None:
    days = {"handoff_content_days": 1, "event_days": 0, "delivery_days": 0}
    assert client.put(RETENTION, json=days, headers=auth("admin")).status_code == 200
    due = [resolved(client, auth, f"sess-race-{n}")["id"] for n in range(6)]
    for handoff_id in due:
        backdate(engine, handoff_id, days=2)
    reports: list[RetentionReport] = []
    start = threading.Barrier(2)

    def sweep() -> None:
        start.wait()
        reports.append(sweep_retention(engine=engine, settings=settings))

    sweepers = [threading.Thread(target=sweep) for _ in range(2)]
    for sweeper in sweepers:
        sweeper.start()
    for sweeper in sweepers:
        sweeper.join(30)
    # A handoff purged by both would count twice.
    assert len(reports) == 2 and sum(report.purged_handoffs for report in reports) == len(due)
    for handoff_id in due:
        assert TYPED not in json.dumps(history(client, auth("admin"), handoff_id))


def test_events_older_than_the_days_and_the_replay_window_are_deleted(
    client: TestClient, auth: TokenFactory, engine: Engine, settings: Settings
) -> None:
    days = {"handoff_content_days": 0, "event_days": 1, "delivery_days": 0}
    assert client.put(RETENTION, json=days, headers=auth("admin")).status_code == 200
    for n in range(4):
        create(client, auth("engineer"), session_id=f"sess-ev-{n}")  # seq 1..4
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE events SET at = :at WHERE seq <= 3"), {"at": utcnow() - timedelta(days=2)}
        )
    narrow = settings.model_copy(update={"event_replay_limit": 2})
    report = sweep_retention(engine=engine, settings=narrow)
    # Old enough: seq 1-3; outside the replay window (the last 2 of 4): seq 1-2.
    assert report == RetentionReport(deleted_events=2)
    with engine.connect() as connection:
        left = connection.execute(text("SELECT seq FROM events ORDER BY seq")).scalars().all()
    assert left == [3, 4]


# --- erasure ----------------------------------------------------------------------


def test_erasing_a_person_purges_what_they_created_and_replaces_their_name(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    erin = auth("engineer", sub="erin", name="Erin Junior")
    response = client.post(HANDOFFS, json=typed_body("sess-erin"), headers=erin)
    handoff_id = response.json()["id"]
    url = f"{HANDOFFS}/{handoff_id}"
    assert client.post(f"{url}/claim", headers=auth("admin")).status_code == 200
    open_one = assert_error(client.post("/api/v1/people/erin/erase", headers=auth("admin")), 409)
    assert open_one["handoff_ids"] == [handoff_id]
    notes = {"resolution_notes": f"fix: {TYPED}"}
    assert client.post(f"{url}/resolve", json=notes, headers=auth("admin")).status_code == 200
    other = create(client, auth("engineer", sub="olga", name="Olga Junior"), session_id="sess-o")

    erased = client.post("/api/v1/people/erin/erase", headers=auth("admin"))
    assert erased.status_code == 200, erased.text
    assert erased.json()["purged_handoffs"] == 1
    stored = stored_text(engine)
    assert "Erin Junior" not in stored and TYPED not in stored
    assert get(client, auth("admin"), handoff_id)["created_by_name"] == "Erased user"
    people = client.get("/api/v1/people", headers=auth("admin")).json()["items"]
    assert "erin" not in [person["id"] for person in people]
    assert get(client, auth("admin"), other["id"])["created_by_name"] == "Olga Junior"
    assert (
        client.post("/api/v1/people/erin/erase", headers=auth("admin")).json()["purged_handoffs"]
        == 0
    )
    foreign = client.post("/api/v1/people/olga/erase", headers=auth("admin", org="globex"))
    assert foreign.status_code == 200 and foreign.json()["renamed_handoffs"] == 0
    assert get(client, auth("admin"), other["id"])["created_by_name"] == "Olga Junior"
    assert_error(client.post("/api/v1/people/olga/erase", headers=auth("senior")), 403)
