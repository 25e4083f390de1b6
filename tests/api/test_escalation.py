"""Re-escalation through the API, on SQLite and PostgreSQL: every handoff answer
carries its level, loop, target, next deadline and assignee; a move shows in the
handoff and in its history as ``handoff_escalated`` with ``data.escalation``,
and the stream's JSON (published and replayed) carries the same data. Another
org sees none of it."""

import json
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import select

from shared.core.db import session_scope
from shared.events.models import Event
from shared.events.record import event_json, event_public, replay_page
from shared.routing.escalation import sweep_escalations
from tests.api.helpers import HANDOFFS, create, slim, with_snapshot
from tests.conftest import TokenFactory

FIELDS = (
    "escalation_level",
    "escalation_loop",
    "escalation_target",
    "next_escalation_at",
    "assigned_to_id",
    "assigned_to_name",
)
ALL_SENIORS = {"target": "all_seniors", "team_id": None, "team_name": None}


def _networking_policy(client: TestClient, auth: TokenFactory, repeat: int = 0) -> str:
    admin = auth("admin")
    team = client.post(
        "/api/v1/teams",
        json={"name": "Networking", "members": [], "domains": ["networking"]},
        headers=admin,
    )
    assert team.status_code == 201, team.text
    levels = [
        {"after_seconds": 2, "target": "domain_team", "mode": "broadcast"},
        {"after_seconds": 30, "target": "all_seniors", "mode": "broadcast"},
    ]
    policy = client.put(
        "/api/v1/escalation-policy", json={"levels": levels, "repeat": repeat}, headers=admin
    )
    assert policy.status_code == 200, policy.text
    return str(team.json()["id"])


def _networking_handoff(client: TestClient, auth: TokenFactory) -> dict[str, Any]:
    return create(client, auth("engineer"), snapshot=with_snapshot(problem_domain="networking"))


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _sweep_due(engine: Engine, handoff: dict[str, Any]) -> int:
    return sweep_escalations(engine=engine, now=_at(handoff["next_escalation_at"]))


def test_answers_carry_the_fields_with_no_policy(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    created = create(client, auth("engineer"))
    assert {field: created[field] for field in FIELDS} == {
        "escalation_level": 0,
        "escalation_loop": 0,
        "escalation_target": ALL_SENIORS,
        "next_escalation_at": None,  # one level, no repeat: nothing to move to
        "assigned_to_id": None,
        "assigned_to_name": None,
    }
    later = _at(created["claim_deadline_at"]) + timedelta(hours=1)
    assert sweep_escalations(engine=engine, now=later) == 0


def test_a_move_shows_in_the_handoff_the_queue_and_the_history(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    team_id = _networking_policy(client, auth)
    created = _networking_handoff(client, auth)
    assert created["escalation_target"] == {
        "target": "domain_team",
        "team_id": team_id,
        "team_name": "Networking",
    }
    deadline = _at(created["next_escalation_at"])
    assert deadline == _at(created["created_at"]) + timedelta(seconds=2)
    assert _sweep_due(engine, created) == 1
    assert _sweep_due(engine, created) == 0  # once per level and loop

    senior = auth("senior")
    moved = client.get(f"{HANDOFFS}/{created['id']}", headers=senior).json()
    assert (moved["escalation_level"], moved["escalation_loop"]) == (1, 0)
    assert moved["escalation_target"] == {
        "target": "all_seniors",
        "team_id": None,
        "team_name": None,
    }
    assert moved["next_escalation_at"] is None
    (listed,) = client.get(HANDOFFS, headers=senior).json()["items"]
    assert listed == moved

    history = client.get(f"{HANDOFFS}/{created['id']}/history", headers=senior).json()["items"]
    assert [event["type"] for event in history] == ["handoff_created", "handoff_escalated"]
    assert history[0]["data"] is None
    escalated = history[1]
    assert escalated["data"] == {
        "escalation": {
            "level": 1,
            "loop": 0,
            "target": "all_seniors",
            "team_id": None,
            "mode": "broadcast",
        }
    }
    assert escalated["actor_id"] is None and escalated["handoff"] == slim(moved)


def test_the_streamed_json_carries_the_escalation(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    _networking_policy(client, auth)
    created = _networking_handoff(client, auth)
    _sweep_due(engine, created)
    with session_scope(engine) as session:
        stored = session.exec(select(Event).where(Event.type == "handoff_escalated")).one()
        published = json.loads(event_json(stored))  # what the relay publishes live
        page = replay_page(session, org_id="acme", after_seq=0, max_bytes=10**6, max_events=10)
        expected = event_public(stored).model_dump(mode="json")
    replayed = json.loads(page.events[-1].json)  # what a reconnecting stream replays
    assert published == replayed == expected
    assert published["data"]["escalation"]["level"] == 1


def test_claim_stops_and_release_starts_over(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    _networking_policy(client, auth, repeat=1)
    created = _networking_handoff(client, auth)
    _sweep_due(engine, created)
    senior = auth("senior")
    claimed = client.post(f"{HANDOFFS}/{created['id']}/claim", headers=senior).json()
    assert claimed["escalation_level"] == 1 and claimed["next_escalation_at"] is None
    released = client.post(f"{HANDOFFS}/{created['id']}/release", headers=senior).json()
    assert (released["escalation_level"], released["escalation_loop"]) == (0, 0)
    assert released["escalation_target"]["target"] == "domain_team"
    assert released["next_escalation_at"] is not None
    cancelled = client.post(f"{HANDOFFS}/{created['id']}/cancel", headers=auth("engineer"))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["next_escalation_at"] is None
    assert _sweep_due(engine, released) == 0


def test_another_org_sees_no_escalation(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    _networking_policy(client, auth)
    created = _networking_handoff(client, auth)
    _sweep_due(engine, created)
    other = auth("senior", org="globex")
    assert client.get(HANDOFFS, headers=other).json()["items"] == []
    history = client.get(f"{HANDOFFS}/{created['id']}/history", headers=other)
    assert history.status_code == 404
    theirs = create(client, auth("engineer", org="globex"), "sess-g")
    assert theirs["escalation_target"]["target"] == "all_seniors"  # acme's policy is not theirs
    assert theirs["next_escalation_at"] is None
