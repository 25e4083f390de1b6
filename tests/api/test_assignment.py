"""Assign mode, reassign and the queue filters over the app, on SQLite and
PostgreSQL and the test's Redis (people made present by heartbeats): the least
busy present member of the level's target gets the handoff, then the least
recently assigned; nobody present leaves it unassigned; an assignment ends with
its level; reassign moves a claim; rejected requests change nothing; another org
sees none of it. Two replicas and real workers: tests/e2e/test_assignment.py."""

import itertools
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from shared.core.redis_client import make_redis
from shared.core.settings import Settings
from shared.routing.assignment import present_from
from shared.routing.escalation import sweep_escalations
from shared.routing.presence import Presence
from tests.api.helpers import HANDOFFS, assert_error, create, get, history, list_all, with_snapshot
from tests.conftest import TokenFactory

SENIORS = {"u-ana": "Ana Senior", "u-ben": "Ben Senior", "u-cy": "Cy Senior"}


def _senior(auth: TokenFactory, user_id: str, org: str = "acme") -> dict[str, str]:
    return auth("senior", sub=user_id, name=SENIORS.get(user_id, user_id), org=org)


def _present(client: TestClient, auth: TokenFactory, *user_ids: str) -> None:
    for user_id in user_ids:
        response = client.post("/api/v1/presence/heartbeat", headers=_senior(auth, user_id))
        assert response.status_code == 204, response.text


def _policy(client: TestClient, auth: TokenFactory, *levels: dict[str, Any]) -> None:
    response = client.put(
        "/api/v1/escalation-policy",
        json={"levels": list(levels), "repeat": 0},
        headers=auth("admin"),
    )
    assert response.status_code == 200, response.text


def _team(client: TestClient, auth: TokenFactory, *member_ids: str, domain: str) -> str:
    members = [{"id": user_id, "name": SENIORS[user_id]} for user_id in member_ids]
    response = client.post(
        "/api/v1/teams",
        json={"name": f"Team {domain}", "members": members, "domains": [domain]},
        headers=auth("admin"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


ASSIGN_ALL = {"after_seconds": 60, "target": "all_seniors", "mode": "assign"}


_sessions = itertools.count()


def _create(client: TestClient, auth: TokenFactory, domain: str = "kubernetes") -> dict[str, Any]:
    session_id = f"sess-{next(_sessions)}"
    return create(
        client, auth("engineer"), session_id, snapshot=with_snapshot(problem_domain=domain)
    )


def _assigned_events(client: TestClient, auth: TokenFactory, handoff_id: str) -> list[Any]:
    events = history(client, auth("senior"), handoff_id)
    return [event["data"]["assignment"] for event in events if event["type"] == "handoff_assigned"]


def test_three_present_seniors_and_three_handoffs_give_three_assignees(
    client: TestClient, auth: TokenFactory
) -> None:
    _policy(client, auth, ASSIGN_ALL)
    _present(client, auth, *SENIORS)
    handoffs = [_create(client, auth) for _ in range(3)]
    assert sorted(h["assigned_to_id"] for h in handoffs) == sorted(SENIORS)
    # Never assigned before: ties go by id. Then least recently assigned.
    assert [h["assigned_to_id"] for h in handoffs] == ["u-ana", "u-ben", "u-cy"]
    for handoff in handoffs:
        assert handoff["assigned_to_name"] == SENIORS[handoff["assigned_to_id"]]
        assert _assigned_events(client, auth, handoff["id"]) == [
            {
                "assigned_to_id": handoff["assigned_to_id"],
                "assigned_to_name": handoff["assigned_to_name"],
                "level": 0,
                "loop": 0,
            }
        ]
        types = [e["type"] for e in history(client, auth("senior"), handoff["id"])]
        assert types == ["handoff_created", "handoff_assigned"]
    fourth = _create(client, auth)
    assert fourth["assigned_to_id"] == "u-ana"  # the least recently assigned


def test_the_busiest_senior_is_skipped(client: TestClient, auth: TokenFactory) -> None:
    busy = _create(client, auth)  # no policy yet: broadcast
    claimed = client.post(f"{HANDOFFS}/{busy['id']}/claim", headers=_senior(auth, "u-ana"))
    assert claimed.status_code == 200, claimed.text
    _policy(client, auth, ASSIGN_ALL)
    _present(client, auth, *SENIORS)
    assignees = [_create(client, auth)["assigned_to_id"] for _ in range(2)]
    assert assignees == ["u-ben", "u-cy"]
    assert _create(client, auth)["assigned_to_id"] == "u-ben"  # ana still holds a claim


def test_nobody_present_leaves_it_unassigned(client: TestClient, auth: TokenFactory) -> None:
    _policy(client, auth, ASSIGN_ALL)
    handoff = _create(client, auth)
    assert (handoff["assigned_to_id"], handoff["assigned_to_name"]) == (None, None)
    assert _assigned_events(client, auth, handoff["id"]) == []


def test_a_team_level_assigns_only_present_members_of_the_team(
    client: TestClient, auth: TokenFactory
) -> None:
    _team(client, auth, "u-cy", domain="networking")
    _policy(client, auth, {**ASSIGN_ALL, "target": "domain_team"})
    _present(client, auth, "u-ana", "u-ben")
    assert _create(client, auth, "networking")["assigned_to_id"] is None  # cy is away
    _present(client, auth, "u-cy")
    assert _create(client, auth, "networking")["assigned_to_id"] == "u-cy"
    # No team owns the domain: the level targets all seniors.
    assert _create(client, auth, "databases")["assigned_to_id"] == "u-ana"


def test_a_move_to_an_assign_level_assigns_and_a_move_away_ends_it(
    client: TestClient, auth: TokenFactory, engine: Engine, settings: Settings
) -> None:
    _policy(
        client,
        auth,
        {"after_seconds": 5, "target": "all_seniors", "mode": "broadcast"},
        {**ASSIGN_ALL, "after_seconds": 5},
        {"after_seconds": 5, "target": "all_seniors", "mode": "broadcast"},
    )
    _present(client, auth, "u-ben")
    handoff = _create(client, auth)
    assert handoff["assigned_to_id"] is None
    redis = make_redis(settings.redis_url)
    present = present_from(Presence.from_settings(redis, settings))
    due = datetime.fromisoformat(handoff["next_escalation_at"])
    assert sweep_escalations(engine=engine, now=due, present=present) == 1
    moved = get(client, auth("senior"), handoff["id"])
    assert (moved["escalation_level"], moved["assigned_to_id"]) == (1, "u-ben")
    assert _assigned_events(client, auth, handoff["id"]) == [
        {"assigned_to_id": "u-ben", "assigned_to_name": "Ben Senior", "level": 1, "loop": 0}
    ]
    due = datetime.fromisoformat(moved["next_escalation_at"])
    assert sweep_escalations(engine=engine, now=due, present=present) == 1
    moved = get(client, auth("senior"), handoff["id"])
    assert (moved["escalation_level"], moved["assigned_to_id"]) == (2, None)
    redis.close()


def test_a_claim_ends_the_assignment_and_a_release_assigns_again(
    client: TestClient, auth: TokenFactory
) -> None:
    _policy(client, auth, ASSIGN_ALL)
    _present(client, auth, "u-ana", "u-ben")
    handoff = _create(client, auth)
    assert handoff["assigned_to_id"] == "u-ana"
    ben = _senior(auth, "u-ben")
    claimed = client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=ben).json()
    assert (claimed["claimed_by_id"], claimed["assigned_to_id"]) == ("u-ben", None)
    released = client.post(f"{HANDOFFS}/{handoff['id']}/release", headers=ben).json()
    assert released["status"] == "pending" and released["escalation_level"] == 0
    assert released["assigned_to_id"] == "u-ana"  # not ben, who has just let it go
    types = [e["type"] for e in history(client, ben, handoff["id"])]
    assert types == [
        "handoff_created",
        "handoff_assigned",
        "handoff_claimed",
        "handoff_released",
        "handoff_assigned",
    ]
    cancelled = client.post(f"{HANDOFFS}/{handoff['id']}/cancel", headers=auth("admin")).json()
    assert cancelled["assigned_to_id"] is None


def test_reassign_moves_the_claim_and_records_the_event(
    client: TestClient, auth: TokenFactory
) -> None:
    _present(client, auth, "u-ben")
    # cy: away (no stream, no heartbeat), but known as a senior from an earlier request
    assert client.get("/api/v1/me", headers=_senior(auth, "u-cy")).status_code == 200
    handoff = _create(client, auth)
    ana = _senior(auth, "u-ana")
    assert client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=ana).status_code == 200
    body = {"to_id": "u-ben", "to_name": "Ben Senior", "note": "Ben knows this cluster."}
    response = client.post(f"{HANDOFFS}/{handoff['id']}/reassign", json=body, headers=ana)
    assert response.status_code == 200, response.text
    moved = response.json()
    assert (moved["status"], moved["claimed_by_id"], moved["claimed_by_name"]) == (
        "claimed",
        "u-ben",
        "Ben Senior",
    )
    last = history(client, ana, handoff["id"])[-1]
    assert last["type"] == "handoff_reassigned"
    assert (last["actor_id"], last["handoff"]["claimed_by_id"]) == ("u-ana", "u-ben")
    assert last["data"] == {
        "reassignment": {
            "from_id": "u-ana",
            "from_name": "Ana Senior",
            "to_id": "u-ben",
            "to_name": "Ben Senior",
            "note": "Ben knows this cluster.",
        }
    }
    # Ana no longer holds it; Ben may resolve it; an admin may move it on.
    assert_error(
        client.post(f"{HANDOFFS}/{handoff['id']}/reassign", json=body, headers=ana),
        403,
        "not_claim_owner",
    )
    to_cy = {"to_id": "u-cy", "to_name": "The CEO (approved)"}  # not a name cy goes by
    by_admin = client.post(
        f"{HANDOFFS}/{handoff['id']}/reassign", json=to_cy, headers=auth("admin")
    )
    assert by_admin.status_code == 200, by_admin.text
    assert (by_admin.json()["claimed_by_id"], by_admin.json()["claimed_by_name"]) == (
        "u-cy",
        "Cy Senior",  # the name cy signed in with
    )
    reassignment = history(client, ana, handoff["id"])[-1]["data"]["reassignment"]
    assert (reassignment["to_name"], reassignment["note"]) == ("Cy Senior", "")


@pytest.mark.parametrize(
    "body",
    [
        {"to_id": "", "to_name": "X"},
        {"to_id": "u-ben"},
        {"to_id": "u-ben", "to_name": "Ben", "note": "x" * 2001},
        {"to_id": "u-\x00", "to_name": "Ben"},
        {"to_id": "u-ben", "to_name": "Ben", "extra": 1},
        {"to_id": "x" * 129, "to_name": "Ben"},
    ],
)
def test_a_bad_reassign_body_is_422_and_changes_nothing(
    client: TestClient, auth: TokenFactory, body: dict[str, Any]
) -> None:
    handoff = _create(client, auth)
    ana = _senior(auth, "u-ana")
    claimed = client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=ana).json()
    response = client.post(f"{HANDOFFS}/{handoff['id']}/reassign", json=body, headers=ana)
    assert_error(response, 422)
    assert get(client, ana, handoff["id"]) == claimed


def test_reassign_refusals_change_nothing(client: TestClient, auth: TokenFactory) -> None:
    _present(client, auth, *SENIORS)
    handoff = _create(client, auth)
    url = f"{HANDOFFS}/{handoff['id']}/reassign"
    body = {"to_id": "u-ben", "to_name": "Ben Senior"}
    ana = _senior(auth, "u-ana")
    assert_error(client.post(url, json=body, headers=ana), 409, "invalid_state")
    assert_error(client.post(url, json=body, headers=auth("engineer")), 403)
    claimed = client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=ana).json()
    assert_error(client.post(url, json=body, headers=_senior(auth, "u-cy")), 403, "not_claim_owner")
    to_self = {"to_id": "u-ana", "to_name": "Ana"}
    assert_error(client.post(url, json=to_self, headers=ana), 409, "already_claimer")
    for stranger in ("engineer-1", "u-nobody", "   "):  # an engineer, unknown ids
        to_stranger = {"to_id": stranger, "to_name": "Dana"}
        assert_error(client.post(url, json=to_stranger, headers=ana), 422, "invalid_reassignee")
    other_org = _senior(auth, "u-ana", org="globex")
    assert_error(client.post(url, json=body, headers=other_org), 404, "handoff_not_found")
    assert get(client, ana, handoff["id"]) == claimed
    assert history(client, ana, handoff["id"])[-1]["type"] == "handoff_claimed"


def test_queue_filters_assigned_to_and_for_me(client: TestClient, auth: TokenFactory) -> None:
    _team(client, auth, "u-cy", domain="networking")
    _policy(client, auth, {**ASSIGN_ALL, "target": "domain_team"})
    _present(client, auth, "u-cy")
    networking = _create(client, auth, "networking")  # cy's team, assigned to cy
    databases = _create(client, auth, "databases")  # all seniors, cy assigned
    cy, ana = _senior(auth, "u-cy"), _senior(auth, "u-ana")

    def ids(headers: dict[str, str], **params: Any) -> set[str]:
        return {item["id"] for item in list_all(client, headers, **params)}

    assert ids(cy, assigned_to="me") == {networking["id"], databases["id"]}
    assert ids(ana, assigned_to="u-cy") == {networking["id"], databases["id"]}
    assert ids(ana, assigned_to="me") == set()
    assert ids(cy, **{"for": "me"}) == {networking["id"], databases["id"]}
    assert ids(ana, **{"for": "me"}) == {databases["id"]}  # not in the networking team
    assert ids(auth("admin"), **{"for": "me"}) == {databases["id"]}
    assert ids(auth("engineer"), **{"for": "me"}) == set()  # all seniors is not them
    member = auth("engineer", sub="u-cy")  # a team's member is targeted whatever the role
    assert ids(member, **{"for": "me"}) == {networking["id"]}
    assert ids(_senior(auth, "u-cy", org="globex"), **{"for": "me"}) == set()
    assert_error(client.get(HANDOFFS, params={"for": "you"}, headers=cy), 422)
    assert_error(client.get(HANDOFFS, params={"assigned_to": ""}, headers=cy), 422)


def test_the_first_claim_keeps_its_level_and_team_for_analytics(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    team_id = _team(client, auth, "u-cy", domain="networking")
    _policy(
        client,
        auth,
        {"after_seconds": 5, "target": "all_seniors", "mode": "broadcast"},
        {"after_seconds": 5, "target": "domain_team", "mode": "broadcast"},
    )
    handoff = _create(client, auth, "networking")
    assert sweep_escalations(
        engine=engine, now=datetime.fromisoformat(handoff["next_escalation_at"])
    )
    cy, ana = _senior(auth, "u-cy"), _senior(auth, "u-ana")
    url = f"{HANDOFFS}/{handoff['id']}"
    assert client.post(f"{url}/claim", headers=cy).status_code == 200
    assert client.post(f"{url}/release", headers=cy).status_code == 200  # back at level 0
    assert client.post(f"{url}/claim", headers=ana).status_code == 200
    response = client.get("/api/v1/analytics/escalations", headers=auth("admin"))
    body = response.json()
    assert body["claimed_at_level"] == [{"level": 1, "count": 1}]
    (by_team,) = body["time_to_claim_by_team"]
    assert (by_team["team_id"], by_team["team_name"], by_team["count"]) == (
        team_id,
        "Team networking",
        1,
    )
    assert [(p["id"], p["claimed"]) for p in body["seniors"]] == [("u-ana", 1), ("u-cy", 1)]


def test_without_redis_an_assign_level_broadcasts_and_nothing_fails(
    client: TestClient, auth: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    _policy(client, auth, ASSIGN_ALL)
    _present(client, auth, "u-ana")
    unreachable = make_redis("redis://127.0.0.1:1/0")
    state = client.app.state  # type: ignore[attr-defined]
    working, state.presence = (
        state.presence,
        Presence(unreachable, heartbeat_seconds=60, stream_ttl_seconds=30),
    )
    try:
        handoff = _create(client, auth)
        claimed = client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=_senior(auth, "u-ana"))
        released = client.post(
            f"{HANDOFFS}/{handoff['id']}/release", headers=_senior(auth, "u-ana")
        )
    finally:
        state.presence = working
        unreachable.close()
    assert handoff["assigned_to_id"] is None and claimed.status_code == 200
    assert released.status_code == 200 and released.json()["assigned_to_id"] is None
    assert _assigned_events(client, auth, handoff["id"]) == []
    assert "assign-mode level of org acme broadcasts" in caplog.text


def test_one_sweep_assigning_many_goes_round_the_present_in_turn(
    client: TestClient, auth: TokenFactory, engine: Engine, settings: Settings
) -> None:
    _policy(
        client,
        auth,
        {"after_seconds": 5, "target": "all_seniors", "mode": "broadcast"},
        ASSIGN_ALL,
    )
    _present(client, auth, *SENIORS)
    handoffs = [_create(client, auth) for _ in range(9)]
    redis = make_redis(settings.redis_url)
    present = present_from(Presence.from_settings(redis, settings))
    last_due = max(datetime.fromisoformat(h["next_escalation_at"]) for h in handoffs)
    try:
        assert sweep_escalations(engine=engine, now=last_due, present=present) == 9
    finally:
        redis.close()
    assignees = [get(client, auth("senior"), h["id"])["assigned_to_id"] for h in handoffs]
    assert sorted(assignees) == sorted(list(SENIORS) * 3)  # one sweep time, still 3 each
    assert assignees == ["u-ana", "u-ben", "u-cy"] * 3


def test_a_team_with_no_members_now_is_everyones_for_me(
    client: TestClient, auth: TokenFactory
) -> None:
    team_id = _team(client, auth, "u-cy", domain="networking")
    empty = client.post(
        "/api/v1/teams",
        json={"name": "Nobody yet", "members": [], "domains": ["databases"]},
        headers=auth("admin"),
    )
    assert empty.status_code == 201, empty.text
    _policy(client, auth, {**ASSIGN_ALL, "target": "domain_team"})
    networking = _create(client, auth, "networking")
    databases = _create(client, auth, "databases")
    ana = _senior(auth, "u-ana")

    def for_me(headers: dict[str, str]) -> set[str]:
        return {item["id"] for item in list_all(client, headers, **{"for": "me"})}

    assert for_me(ana) == {databases["id"]}  # the empty team's, not cy's team's
    deleted = client.delete(f"/api/v1/teams/{team_id}", headers=auth("admin"))
    assert deleted.status_code == 204, deleted.text
    assert for_me(ana) == {networking["id"], databases["id"]}  # its team is gone
    assert for_me(auth("engineer", sub="u-cy")) == set()  # no longer a member of anything
