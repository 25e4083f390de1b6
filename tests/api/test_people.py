"""``GET /api/v1/people`` and who a claim may be reassigned to, on SQLite and
PostgreSQL: everyone of the org who authenticated (any role) is listed by name
with their last role and teams; another org's people never appear; reassign
takes a senior or admin who is present or known, and nobody else."""

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from shared.auth.models import KnownPerson
from shared.core.timeutil import utcnow
from tests.api.helpers import HANDOFFS, assert_error, create, event_types, get
from tests.conftest import TokenFactory

PEOPLE = "/api/v1/people"
TEAMS = "/api/v1/teams"


def people(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get(PEOPLE, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def seen(client: TestClient, headers: dict[str, str]) -> None:
    """One authenticated request: the caller is now known."""
    assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_everyone_who_authenticated_is_listed_by_name(
    client: TestClient, auth: TokenFactory
) -> None:
    zoe = auth("engineer", sub="u-zoe", name="Zoe Junior")
    dana = auth("senior", sub="u-dana", name="Dana Senior")
    admin = auth("admin", sub="u-ada", name="Ada Admin")
    create(client, zoe)  # through the one-hop path (InThread)
    seen(client, dana)  # through the plain dependency
    team = client.post(
        TEAMS,
        json={"name": "Networking", "members": [{"id": "u-dana", "name": "Dana"}]},
        headers=admin,
    ).json()
    listed = people(client, zoe)  # any role reads it
    assert [(p["id"], p["name"], p["role"]) for p in listed] == [
        ("u-ada", "Ada Admin", "admin"),
        ("u-dana", "Dana Senior", "senior"),
        ("u-zoe", "Zoe Junior", "engineer"),
    ]
    assert set(listed[0]) == {"id", "name", "role", "last_seen_at", "teams"}
    assert listed[1]["teams"] == [{"id": team["id"], "name": "Networking"}]
    assert listed[0]["teams"] == listed[2]["teams"] == []
    assert all(p["last_seen_at"].endswith("Z") for p in listed)


def test_another_orgs_people_never_appear(client: TestClient, auth: TokenFactory) -> None:
    seen(client, auth("senior", sub="u-dana", org="acme"))
    theirs = auth("senior", sub="u-dana", name="Dana of Globex", org="globex")
    gus = auth("admin", sub="u-gus", org="globex")
    team = client.post(  # their team lists Dana's id: not a team of acme's Dana
        TEAMS, json={"name": "G", "members": [{"id": "u-dana", "name": "D"}]}, headers=gus
    ).json()
    ours = people(client, auth("engineer", sub="u-e", org="acme"))
    assert [(p["id"], p["name"], p["teams"]) for p in ours] == [
        ("u-e", "Engineer One", []),
        ("u-dana", "Senior One", []),  # globex's team names an id, not acme's person
    ]
    assert [(p["id"], p["name"], p["teams"]) for p in people(client, theirs)] == [
        ("u-gus", "Admin One", []),
        ("u-dana", "Dana of Globex", [{"id": team["id"], "name": "G"}]),
    ]


def test_people_unseen_for_90_days_are_not_listed(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    seen(client, auth("senior", sub="u-old", name="Old Timer"))
    with engine.begin() as connection:
        connection.execute(
            update(KnownPerson.__table__).values(last_seen_at=utcnow() - timedelta(days=91))  # type: ignore[attr-defined]
        )
    assert [p["id"] for p in people(client, auth("admin"))] == ["admin-1"]


def test_no_token_is_401(client: TestClient) -> None:
    assert_error(client.get(PEOPLE), 401)


# --- reassign -------------------------------------------------------------------------


def claimed_by_ana(client: TestClient, auth: TokenFactory, junior: dict[str, str]) -> str:
    handoff = create(client, junior)
    ana = auth("senior", sub="u-ana", name="Ana Senior")
    assert client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=ana).status_code == 200
    return str(handoff["id"])


def reassign(client: TestClient, auth: TokenFactory, handoff_id: str, to_id: str) -> Any:
    body = {"to_id": to_id, "to_name": "Someone"}
    ana = auth("senior", sub="u-ana", name="Ana Senior")
    return client.post(f"{HANDOFFS}/{handoff_id}/reassign", json=body, headers=ana)


def test_reassign_to_an_offline_known_senior_or_admin(
    client: TestClient, auth: TokenFactory
) -> None:
    """Neither is present (no stream, no heartbeat): the people registry knows them."""
    seen(client, auth("senior", sub="u-ben", name="Ben Senior"))
    seen(client, auth("admin", sub="u-ada", name="Ada Admin"))
    handoff_id = claimed_by_ana(client, auth, auth("engineer", sub="u-zoe"))
    moved = reassign(client, auth, handoff_id, "u-ben")
    assert moved.status_code == 200, moved.text
    assert (moved.json()["claimed_by_id"], moved.json()["claimed_by_name"]) == (
        "u-ben",
        "Ben Senior",  # the name the org knows, not the one asked for
    )
    by_ben = auth("senior", sub="u-ben", name="Ben Senior")
    body = {"to_id": "u-ada", "to_name": "Ada Admin"}
    to_admin = client.post(f"{HANDOFFS}/{handoff_id}/reassign", json=body, headers=by_ben)
    assert to_admin.status_code == 200, to_admin.text
    assert to_admin.json()["claimed_by_id"] == "u-ada"


def test_reassign_to_the_junior_who_escalated_is_422(
    client: TestClient, auth: TokenFactory
) -> None:
    """The probe's case: the junior is a team member, so the old rule took them,
    and the claim was orphaned (they cannot resolve, release or reassign it)."""
    junior = auth("engineer", sub="u-zoe", name="Zoe Junior")
    client.post(
        TEAMS,
        json={"name": "Networking", "members": [{"id": "u-zoe", "name": "Zoe Junior"}]},
        headers=auth("admin"),
    )
    handoff_id = claimed_by_ana(client, auth, junior)
    before = get(client, junior, handoff_id)
    body = assert_error(reassign(client, auth, handoff_id, "u-zoe"), 422, "invalid_reassignee")
    assert "senior or admin" in body["detail"]
    assert get(client, junior, handoff_id) == before
    assert event_types(client, junior, handoff_id)[-1] == "handoff_claimed"


def test_reassign_to_a_team_member_of_unknown_role_is_422(
    client: TestClient, auth: TokenFactory
) -> None:
    client.post(
        TEAMS,
        json={"name": "Networking", "members": [{"id": "u-cy", "name": "Cy"}]},
        headers=auth("admin"),
    )
    handoff_id = claimed_by_ana(client, auth, auth("engineer"))
    assert_error(reassign(client, auth, handoff_id, "u-cy"), 422, "invalid_reassignee")


def test_reassign_to_someone_now_an_engineer_is_422(client: TestClient, auth: TokenFactory) -> None:
    seen(client, auth("senior", sub="u-ben"))
    seen(client, auth("engineer", sub="u-ben"))  # their latest role
    handoff_id = claimed_by_ana(client, auth, auth("engineer"))
    assert_error(reassign(client, auth, handoff_id, "u-ben"), 422, "invalid_reassignee")


def test_reassign_to_another_orgs_senior_is_422(client: TestClient, auth: TokenFactory) -> None:
    seen(client, auth("senior", sub="u-ben", org="globex"))
    client.post(  # present there, too
        "/api/v1/presence/heartbeat", headers=auth("senior", sub="u-ben", org="globex")
    )
    handoff_id = claimed_by_ana(client, auth, auth("engineer"))
    assert_error(reassign(client, auth, handoff_id, "u-ben"), 422, "invalid_reassignee")


def test_reassign_to_an_unknown_id_is_422(client: TestClient, auth: TokenFactory) -> None:
    handoff_id = claimed_by_ana(client, auth, auth("engineer"))
    assert_error(reassign(client, auth, handoff_id, "u-nobody"), 422, "invalid_reassignee")
