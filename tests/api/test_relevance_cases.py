"""The console's relevance cases (``tests/console/relevance_cases.json``) against
the SQL: each case is built through the API (teams, a one-level policy, the
handoff, its claim or cancel, presence for an assignment), then ``GET
/handoffs?status=pending&for=me`` as the person must list the handoff exactly
when the case says it is in their "for me" list. ``node --test`` runs the same
cases against the console's ``relevance.js``; the shapes it feeds that module
(the handoff's ``escalation_target`` and ``assigned_to_id``, ``GET /me``'s
teams) are checked here against what the API answers."""

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import HANDOFFS, create, get, list_all, with_snapshot
from tests.conftest import TokenFactory

CASES_FILE = Path(__file__).resolve().parent.parent / "console" / "relevance_cases.json"
SPEC: dict[str, Any] = json.loads(CASES_FILE.read_text(encoding="utf-8"))
CREATOR = "casey"  # an engineer in no team
CLAIMER = "dana"
#: The policy once a case's team is deleted (a policy naming it would keep it).
ALL_SENIORS = {"levels": [{"after_seconds": 60, "target": "all_seniors"}], "repeat": 0}


def _as(auth: TokenFactory, person: str) -> dict[str, str]:
    return auth(SPEC["people"][person], sub=person, name=person.title())


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.status_code != 204 else None


def _teams(client: TestClient, admin: dict[str, str]) -> dict[str, str]:
    """Every team of the cases (the deleted ones too, for now), each owning the
    domain of its name: name → id."""
    ids = {}
    for name in [*SPEC["teams"], *SPEC["deleted_teams"]]:
        members = [{"id": person, "name": person.title()} for person in SPEC["teams"].get(name, [])]
        body = {"name": name, "members": members, "domains": [name]}
        ids[name] = _ok(client.post("/api/v1/teams", json=body, headers=admin), 201)["id"]
    return ids


def _level(spec: dict[str, Any], team_ids: dict[str, str]) -> dict[str, Any]:
    mode = "assign" if spec.get("assigned_to") else "broadcast"
    level = {"after_seconds": 60, "target": spec["target"], "mode": mode}
    if spec["target"] == "team":
        level["team_id"] = team_ids[spec["team"]]
    return level


def _build(client: TestClient, auth: TokenFactory, spec: dict[str, Any]) -> dict[str, Any]:
    """The case's handoff, made as the API makes it; returned as ``GET`` answers it."""
    admin = _as(auth, "alex")
    team_ids = _teams(client, admin)
    policy = {"levels": [_level(spec, team_ids)], "repeat": 0}
    _ok(client.put("/api/v1/escalation-policy", json=policy, headers=admin))
    if spec.get("assigned_to"):  # the one present person: assign mode picks them
        _ok(client.post("/api/v1/presence/heartbeat", headers=_as(auth, spec["assigned_to"])), 204)
    domain = spec["team"] if spec["target"] == "domain_team" else "misc"
    handoff = create(client, _as(auth, CREATOR), snapshot=with_snapshot(problem_domain=domain))
    if spec.get("team") in SPEC["deleted_teams"]:
        _ok(client.put("/api/v1/escalation-policy", json=ALL_SENIORS, headers=admin))
        _ok(client.delete(f"/api/v1/teams/{team_ids[spec['team']]}", headers=admin), 204)
    if spec["status"] == "claimed":
        _ok(client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=_as(auth, CLAIMER)))
    elif spec["status"] == "cancelled":
        _ok(client.post(f"{HANDOFFS}/{handoff['id']}/cancel", headers=_as(auth, CREATOR)))
    shown = get(client, admin, handoff["id"])
    _check_shape(shown, spec, team_ids)
    return shown


def _check_shape(handoff: dict[str, Any], spec: dict[str, Any], team_ids: dict[str, str]) -> None:
    """What ``cases.mjs`` gives ``relevance.js`` for this case is what the API shows."""
    target = handoff["escalation_target"]
    team = None if spec["target"] == "all_seniors" else team_ids[spec["team"]]
    assert (target["target"], target["team_id"]) == (spec["target"], team)
    assert handoff["status"] == spec["status"]
    assert handoff["assigned_to_id"] == spec.get("assigned_to")


@pytest.mark.parametrize("case", SPEC["cases"], ids=[case["name"] for case in SPEC["cases"]])
def test_for_me_lists_what_the_console_decides(
    client: TestClient, auth: TokenFactory, case: dict[str, Any]
) -> None:
    handoff = _build(client, auth, case["handoff"])
    person = _as(auth, case["person"])
    listed = list_all(client, person, status="pending", **{"for": "me"})
    assert (handoff["id"] in {item["id"] for item in listed}) is case["for_me"]


def test_me_lists_the_teams_the_cases_give_each_person(
    client: TestClient, auth: TokenFactory
) -> None:
    team_ids = _teams(client, _as(auth, "alex"))
    for person in SPEC["people"]:
        me = _ok(client.get("/api/v1/me", headers=_as(auth, person)))
        expected = {team_ids[name] for name, members in SPEC["teams"].items() if person in members}
        assert (me["id"], {team["id"] for team in me["teams"]}) == (person, expected)
