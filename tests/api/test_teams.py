"""``/api/v1/me``, teams and the escalation policy, on SQLite and PostgreSQL:
CRUD, every limit, conflicts settled by the database, roles, org isolation,
and rejected requests leaving everything as it was."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.core.settings import Settings
from shared.routing import policies
from shared.routing import teams as domain
from tests.api.helpers import assert_error
from tests.conftest import TokenFactory

TEAMS = "/api/v1/teams"
POLICY = "/api/v1/escalation-policy"
ME = "/api/v1/me"


def team_body(name: str = "Networking", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "members": [{"id": "u-42", "name": "Dana Senior"}, {"id": "u-7", "name": "Sam Senior"}],
        "domains": ["networking", "dns"],
    }
    body.update(overrides)
    return body


def make_team(client: TestClient, auth: TokenFactory, **body: Any) -> dict[str, Any]:
    response = client.post(TEAMS, json=team_body(**body), headers=auth("admin"))
    assert response.status_code == 201, response.text
    return response.json()


def level(target: str = "all_seniors", **fields: Any) -> dict[str, Any]:
    return {"after_seconds": 60, "target": target, "mode": "broadcast", **fields}


def everything(client: TestClient, auth: TokenFactory, org: str = "acme") -> tuple[Any, ...]:
    """What a rejected request must leave alone: the org's teams and its policy."""
    admin = auth("admin", org=org)
    return (
        client.get(TEAMS, headers=admin).json(),
        client.get(POLICY, headers=admin).json(),
    )


@pytest.fixture
def unchanged(client: TestClient, auth: TokenFactory) -> Callable[[], None]:
    """The first call takes a picture of the org's teams and policy; each later
    call fails if they differ from it."""
    before: list[tuple[Any, ...]] = []

    def check() -> None:
        if not before:
            before.append(everything(client, auth))
            return
        assert everything(client, auth) == before[0]

    return check


# --- teams: CRUD -------------------------------------------------------------------


def test_create_get_list_replace_delete(client: TestClient, auth: TokenFactory) -> None:
    created = make_team(client, auth)
    assert set(created) == {
        "id",
        "name",
        "members",
        "domains",
        "slack_channel",
        "created_at",
        "updated_at",
    }
    assert created["name"] == "Networking"
    assert created["members"] == team_body()["members"]
    assert created["domains"] == ["networking", "dns"]  # the order given
    assert created["created_at"] == created["updated_at"]
    assert created["created_at"].endswith("Z")
    path = f"{TEAMS}/{created['id']}"

    for role in ("engineer", "senior", "admin"):  # everyone in the org reads
        assert client.get(path, headers=auth(role)).json() == created
        assert client.get(TEAMS, headers=auth(role)).json() == {
            "items": [created],
            "next_cursor": None,
        }

    new = team_body("Network & DNS", members=[{"id": "u-9", "name": "Kim"}], domains=["dns", "tls"])
    replaced = client.put(path, json=new, headers=auth("admin"))
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["name"], body["members"], body["domains"]) == (
        "Network & DNS",
        [{"id": "u-9", "name": "Kim"}],
        ["dns", "tls"],
    )
    assert body["id"] == created["id"] and body["created_at"] == created["created_at"]
    assert body["updated_at"] > created["updated_at"]
    assert client.get(path, headers=auth("engineer")).json() == body

    deleted = client.delete(path, headers=auth("admin"))
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(client.get(path, headers=auth("admin")), 404, "team_not_found")
    assert client.get(TEAMS, headers=auth("admin")).json() == {"items": [], "next_cursor": None}
    assert_error(client.delete(path, headers=auth("admin")), 404, "team_not_found")


def test_teams_are_listed_by_name(client: TestClient, auth: TokenFactory) -> None:
    for name in ("Storage", "Databases", "Networking"):
        make_team(client, auth, name=name, domains=[name.lower()])
    items = client.get(TEAMS, headers=auth("senior")).json()["items"]
    assert [team["name"] for team in items] == ["Databases", "Networking", "Storage"]
    assert [team["domains"] for team in items] == [["databases"], ["networking"], ["storage"]]


def test_teams_page_by_name(client: TestClient, auth: TokenFactory) -> None:
    names = ["Edge", "Apps", "Storage", "Databases", "Networking"]
    for name in names:
        make_team(client, auth, name=name, domains=[name.lower()])
    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(TEAMS, params=params, headers=auth("engineer")).json()
        pages.append([team["name"] for team in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [["Apps", "Databases"], ["Edge", "Networking"], ["Storage"]]
    first = client.get(TEAMS, headers=auth("engineer")).json()  # default: 20 a page
    assert (len(first["items"]), first["next_cursor"]) == (5, None)


def test_teams_without_their_members(client: TestClient, auth: TokenFactory) -> None:
    """What the queue needs (which teams have members), without the members: a
    page of 40 teams of 500 members was 8.2 MB."""
    full = make_team(client, auth)  # two members
    empty = make_team(client, auth, name="Later", members=[], domains=[])
    response = client.get(TEAMS, params={"members": "false"}, headers=auth("senior"))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "items": [
            {key: value for key, value in team.items() if key != "members"}
            | {"member_count": count}
            for team, count in ((empty, 0), (full, 2))
        ],
        "next_cursor": None,
    }


@pytest.mark.slow  # 40 teams of 500 members: ~10 s
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # sizes, not SQL
def test_forty_maximum_teams_are_a_small_summary_and_paged_pages(
    client: TestClient, auth: TokenFactory
) -> None:
    """The probe's org: 40 teams of 500 members made one 8.2 MB answer, fetched by
    the console on every queue refresh."""
    for t in range(40):
        members = [{"id": f"u-{t}-{m}", "name": f"Senior {t}-{m} " + "x" * 100} for m in range(500)]
        body = team_body(f"Team {t:02}", members=members, domains=[f"d{t}"])
        assert client.post(TEAMS, json=body, headers=auth("admin")).status_code == 201
    summary = client.get(TEAMS, params={"members": "false", "limit": 100}, headers=auth("senior"))
    assert len(summary.json()["items"]) == 40
    assert len(summary.content) < 10_000, len(summary.content)
    page = client.get(TEAMS, headers=auth("senior"))
    assert len(page.json()["items"]) == 20 and page.json()["next_cursor"]
    assert len(page.content) < 4_500_000, len(page.content)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "not-ours"}, {"cursor": "WzFd"}],
    ids=["limit-0", "limit-101", "limit-text", "cursor-garbage", "cursor-wrong-shape"],
)
def test_bad_team_paging_is_422(
    client: TestClient, auth: TokenFactory, params: dict[str, Any]
) -> None:
    make_team(client, auth)
    response = client.get(TEAMS, params=params, headers=auth("admin"))
    assert response.status_code == 422, response.text
    assert response.json()["error"] in ("validation_error", "invalid_cursor")


def test_a_team_may_be_empty(client: TestClient, auth: TokenFactory) -> None:
    response = client.post(TEAMS, json={"name": "Later"}, headers=auth("admin"))
    assert response.status_code == 201, response.text
    assert (response.json()["members"], response.json()["domains"]) == ([], [])


def test_replace_may_keep_its_own_name_and_domains(client: TestClient, auth: TokenFactory) -> None:
    team = make_team(client, auth)
    body = team_body(members=[{"id": "u-1", "name": "New"}])
    response = client.put(f"{TEAMS}/{team['id']}", json=body, headers=auth("admin"))
    assert response.status_code == 200, response.text
    assert response.json()["domains"] == ["networking", "dns"]


@pytest.mark.parametrize(
    "team_id", ["nope", str(uuid.uuid4()), "a" * 8_000], ids=["word", "unknown-uuid", "long"]
)
def test_a_missing_team_is_a_404(client: TestClient, auth: TokenFactory, team_id: str) -> None:
    admin = auth("admin")
    assert_error(client.get(f"{TEAMS}/{team_id}", headers=admin), 404, "team_not_found")
    response = client.put(f"{TEAMS}/{team_id}", json=team_body(), headers=admin)
    assert_error(response, 404, "team_not_found")
    assert_error(client.delete(f"{TEAMS}/{team_id}", headers=admin), 404, "team_not_found")
    assert client.get(TEAMS, headers=admin).json() == {"items": [], "next_cursor": None}


# --- teams: limits -----------------------------------------------------------------


def members(count: int) -> list[dict[str, str]]:
    return [{"id": f"u-{number}", "name": f"Senior {number}"} for number in range(count)]


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "n" * 64},
        {"name": "n"},
        {"members": members(500)},
        {"members": [{"id": "i" * 128, "name": "n" * 256}]},
        {"domains": ["d" * 64, "x"]},
    ],
    ids=["name-64", "name-1", "500-members", "longest-member", "domain-64"],
)
def test_the_largest_and_smallest_allowed_values(
    client: TestClient, auth: TokenFactory, overrides: dict[str, Any]
) -> None:
    body = team_body(**overrides)
    response = client.post(TEAMS, json=body, headers=auth("admin"))
    assert response.status_code == 201, response.text
    assert {key: response.json()[key] for key in overrides} == overrides


INVALID_TEAMS = {
    "name-65": team_body("n" * 65),
    "name-empty": team_body(""),
    "name-blank": team_body("   "),
    "name-missing": {"members": [], "domains": []},
    "name-nul": team_body("Net\x00"),
    "501-members": team_body(members=members(501)),
    "duplicate-member-id": team_body(
        members=[{"id": "u-1", "name": "A"}, {"id": "u-1", "name": "B"}]
    ),
    "member-id-129": team_body(members=[{"id": "i" * 129, "name": "A"}]),
    "member-id-empty": team_body(members=[{"id": "", "name": "A"}]),
    "member-name-257": team_body(members=[{"id": "u-1", "name": "n" * 257}]),
    "member-extra-field": team_body(members=[{"id": "u-1", "name": "A", "role": "senior"}]),
    "domain-65": team_body(domains=["d" * 65]),
    "domain-empty": team_body(domains=[""]),
    "domain-nul": team_body(domains=["dns\x00"]),  # found by schemathesis: a 500 on PostgreSQL
    "member-name-nul": team_body(members=[{"id": "u-1", "name": "A\x00"}]),
    "duplicate-domain": team_body(domains=["dns", "dns"]),
    "201-domains": team_body(domains=[f"d{number}" for number in range(201)]),
    "domains-not-a-list": team_body(domains="dns"),
    "extra-field": team_body(colour="blue"),
}


@pytest.mark.parametrize("body", INVALID_TEAMS.values(), ids=INVALID_TEAMS.keys())
def test_invalid_teams_are_422_and_change_nothing(
    client: TestClient, auth: TokenFactory, unchanged: Callable[[], None], body: dict[str, Any]
) -> None:
    team = make_team(client, auth, name="Existing", domains=["existing"])
    unchanged()
    assert_error(client.post(TEAMS, json=body, headers=auth("admin")), 422, "validation_error")
    response = client.put(f"{TEAMS}/{team['id']}", json=body, headers=auth("admin"))
    assert_error(response, 422, "validation_error")
    unchanged()


# --- teams: conflicts --------------------------------------------------------------


def test_a_domain_belongs_to_one_team(
    client: TestClient, auth: TokenFactory, unchanged: Callable[[], None]
) -> None:
    owner = make_team(client, auth, name="Networking", domains=["networking", "dns"])
    other = make_team(client, auth, name="Platform", domains=["kubernetes"])
    unchanged()
    response = client.post(
        TEAMS, json=team_body("Edge", domains=["cdn", "dns"]), headers=auth("admin")
    )
    body = assert_error(response, 409, "domain_taken")
    assert (body["domain"], body["team_id"], body["team_name"]) == (
        "dns",
        owner["id"],
        "Networking",
    )
    assert "Networking" in body["detail"]
    response = client.put(
        f"{TEAMS}/{other['id']}",
        json=team_body("Platform", domains=["kubernetes", "networking"]),
        headers=auth("admin"),
    )
    assert assert_error(response, 409, "domain_taken")["team_id"] == owner["id"]
    unchanged()


def test_a_freed_domain_can_be_taken(client: TestClient, auth: TokenFactory) -> None:
    owner = make_team(client, auth, name="Networking", domains=["dns"])
    client.put(f"{TEAMS}/{owner['id']}", json=team_body(domains=[]), headers=auth("admin"))
    make_team(client, auth, name="Edge", domains=["dns"])
    client.delete(f"{TEAMS}/{owner['id']}", headers=auth("admin"))
    assert [team["name"] for team in client.get(TEAMS, headers=auth("admin")).json()["items"]] == [
        "Edge"
    ]


def test_a_team_name_is_unique_in_the_org(
    client: TestClient, auth: TokenFactory, unchanged: Callable[[], None]
) -> None:
    first = make_team(client, auth, name="Networking", domains=["dns"])
    second = make_team(client, auth, name="Platform", domains=["kubernetes"])
    unchanged()
    response = client.post(TEAMS, json=team_body("Networking", domains=[]), headers=auth("admin"))
    assert assert_error(response, 409, "team_name_taken")["team_id"] == first["id"]
    response = client.put(
        f"{TEAMS}/{second['id']}", json=team_body("Networking", domains=[]), headers=auth("admin")
    )
    assert_error(response, 409, "team_name_taken")
    unchanged()


def skip_first_check(monkeypatch: pytest.MonkeyPatch, name: str) -> list[object]:
    """The domain function's first check of ``name`` finds nothing, as when a
    concurrent request on another replica commits just after it: only the
    database's constraint is left to refuse. Returns the calls made (the second:
    the explanation after the constraint refused)."""
    module = policies if name == "_named_teams" else domain
    real = getattr(module, name)
    calls = []

    def check(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            return {} if name == "_named_teams" else None
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, check)
    return calls


def test_a_domain_race_is_settled_by_the_database(
    client: TestClient, auth: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = make_team(client, auth, name="Networking", domains=["dns"])
    calls = skip_first_check(monkeypatch, "_refuse_taken")
    response = client.post(TEAMS, json=team_body("Edge", domains=["dns"]), headers=auth("admin"))
    assert assert_error(response, 409, "domain_taken")["team_id"] == owner["id"]
    assert len(calls) == 2
    assert len(client.get(TEAMS, headers=auth("admin")).json()["items"]) == 1


def test_a_name_race_is_settled_by_the_database(
    client: TestClient, auth: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_team(client, auth, name="Networking", domains=["dns"])
    calls = skip_first_check(monkeypatch, "_refuse_taken")
    response = client.post(TEAMS, json=team_body("Networking", domains=[]), headers=auth("admin"))
    assert_error(response, 409, "team_name_taken")
    assert len(calls) == 2
    assert len(client.get(TEAMS, headers=auth("admin")).json()["items"]) == 1


# --- teams: roles and orgs ---------------------------------------------------------


@pytest.mark.parametrize("role", ["engineer", "senior"])
def test_only_admins_write_teams(
    client: TestClient, auth: TokenFactory, unchanged: Callable[[], None], role: str
) -> None:
    team = make_team(client, auth)
    unchanged()
    headers = auth(role)
    assert_error(client.post(TEAMS, json=team_body("X", domains=[]), headers=headers), 403)
    response = client.put(f"{TEAMS}/{team['id']}", json=team_body("X"), headers=headers)
    assert_error(response, 403, "insufficient_role")
    assert_error(client.delete(f"{TEAMS}/{team['id']}", headers=headers), 403, "insufficient_role")
    response = client.put(POLICY, json={"levels": [level()]}, headers=headers)
    assert_error(response, 403, "insufficient_role")
    unchanged()


def test_no_token_is_a_401(client: TestClient) -> None:
    for method, path in [("GET", ME), ("GET", TEAMS), ("POST", TEAMS), ("GET", POLICY)]:
        assert_error(client.request(method, path, json=team_body()), 401, "not_authenticated")


def test_another_org_sees_nothing_and_touches_nothing(
    client: TestClient, auth: TokenFactory, unchanged: Callable[[], None]
) -> None:
    team = make_team(client, auth)
    client.put(POLICY, json={"levels": [level("team", team_id=team["id"])]}, headers=auth("admin"))
    unchanged()
    other = auth("admin", sub="u-42", org="globex")  # even a member's id, in another org
    path = f"{TEAMS}/{team['id']}"
    assert client.get(TEAMS, headers=other).json() == {"items": [], "next_cursor": None}
    assert_error(client.get(path, headers=other), 404, "team_not_found")
    assert_error(client.put(path, json=team_body("Mine"), headers=other), 404, "team_not_found")
    assert_error(client.delete(path, headers=other), 404, "team_not_found")
    assert client.get(POLICY, headers=other).json()["is_default"] is True
    assert client.get(ME, headers=other).json()["teams"] == []
    response = client.put(
        POLICY, json={"levels": [level("team", team_id=team["id"])]}, headers=other
    )
    assert_error(response, 422, "unknown_team")
    # Names and domains are per org: the other org may use the same ones.
    assert client.post(TEAMS, json=team_body(), headers=other).status_code == 201
    unchanged()


@pytest.fixture
def three_teams_at_most(settings: Settings) -> Settings:
    settings.max_teams_per_org = 3
    return settings


def test_an_org_has_at_most_max_teams(
    three_teams_at_most: Settings, client: TestClient, auth: TokenFactory
) -> None:
    teams = [make_team(client, auth, name=f"T{i}", domains=[f"d{i}"]) for i in range(3)]
    before = client.get(TEAMS, headers=auth("admin")).json()
    response = client.post(TEAMS, json=team_body("T3", domains=["d3"]), headers=auth("admin"))
    body = assert_error(response, 409, "team_limit_reached")
    assert body["limit"] == 3
    assert client.get(TEAMS, headers=auth("admin")).json() == before
    # Another org's quota is its own; a deleted team frees a place.
    other = auth("admin", org="globex")
    assert client.post(TEAMS, json=team_body("T0"), headers=other).status_code == 201
    client.delete(f"{TEAMS}/{teams[0]['id']}", headers=auth("admin"))
    assert client.post(TEAMS, json=team_body("T3"), headers=auth("admin")).status_code == 201


# --- me ----------------------------------------------------------------------------


def test_me_names_the_caller_and_the_teams_listing_them(
    client: TestClient, auth: TokenFactory
) -> None:
    dana = auth("senior", sub="u-42", name="Dana Senior")
    assert client.get(ME, headers=dana).json() == {
        "id": "u-42",
        "name": "Dana Senior",
        "role": "senior",
        "org_id": "acme",
        "teams": [],
    }
    networking = make_team(client, auth, name="Networking", domains=["dns"])
    storage = make_team(client, auth, name="Storage", domains=["disks"])
    make_team(client, auth, name="Apps", domains=[], members=[{"id": "u-7", "name": "Sam"}])
    assert client.get(ME, headers=dana).json()["teams"] == [
        {"id": networking["id"], "name": "Networking"},
        {"id": storage["id"], "name": "Storage"},
    ]
    client.put(
        f"{TEAMS}/{storage['id']}",
        json=team_body("Storage", members=[], domains=["disks"]),
        headers=auth("admin"),
    )
    assert client.get(ME, headers=dana).json()["teams"] == [
        {"id": networking["id"], "name": "Networking"}
    ]
    engineer = client.get(ME, headers=auth("engineer", sub="e-1", name="Eve")).json()
    assert (engineer["role"], engineer["teams"]) == ("engineer", [])


# --- escalation policy -------------------------------------------------------------


def test_with_no_policy_the_default_is_todays_behaviour(
    client: TestClient, auth: TokenFactory, settings: Any
) -> None:
    for role in ("engineer", "senior", "admin"):
        assert client.get(POLICY, headers=auth(role)).json() == {
            "levels": [
                {
                    "after_seconds": settings.claim_sla_seconds,
                    "target": "all_seniors",
                    "team_id": None,
                    "team_name": None,
                    "mode": "broadcast",
                }
            ],
            "repeat": 0,
            "is_default": True,
            "updated_at": None,
        }


def test_put_stores_the_whole_policy(client: TestClient, auth: TokenFactory) -> None:
    team = make_team(client, auth)
    body = {
        "levels": [
            {"after_seconds": 120, "target": "domain_team", "mode": "assign"},
            {"after_seconds": 300, "target": "team", "team_id": team["id"], "mode": "broadcast"},
            {"after_seconds": 600, "target": "all_seniors", "mode": "broadcast"},
        ],
        "repeat": 2,
    }
    response = client.put(POLICY, json=body, headers=auth("admin"))
    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["levels"] == [
        {**body["levels"][0], "team_id": None, "team_name": None},
        {**body["levels"][1], "team_name": "Networking"},
        {**body["levels"][2], "team_id": None, "team_name": None},
    ]
    assert (stored["repeat"], stored["is_default"]) == (2, False)
    assert stored["updated_at"].endswith("Z")
    for role in ("engineer", "senior"):
        assert client.get(POLICY, headers=auth(role)).json() == stored

    smaller = client.put(POLICY, json={"levels": [level()]}, headers=auth("admin")).json()
    assert smaller["levels"] == [{**level(), "team_id": None, "team_name": None}]
    assert smaller["repeat"] == 0  # repeat defaults to 0
    assert smaller["updated_at"] > stored["updated_at"]
    assert client.get(POLICY, headers=auth("admin")).json() == smaller


def test_mode_defaults_to_broadcast(client: TestClient, auth: TokenFactory) -> None:
    body = {"levels": [{"after_seconds": 5, "target": "all_seniors"}]}
    response = client.put(POLICY, json=body, headers=auth("admin"))
    assert response.json()["levels"][0]["mode"] == "broadcast"


def test_the_policy_shows_a_renamed_teams_new_name(client: TestClient, auth: TokenFactory) -> None:
    team = make_team(client, auth)
    client.put(POLICY, json={"levels": [level("team", team_id=team["id"])]}, headers=auth("admin"))
    client.put(f"{TEAMS}/{team['id']}", json=team_body("Net"), headers=auth("admin"))
    assert client.get(POLICY, headers=auth("admin")).json()["levels"][0]["team_name"] == "Net"


def test_the_largest_allowed_policy(client: TestClient, auth: TokenFactory) -> None:
    levels = [level(after_seconds=86_400)] * 9 + [level(after_seconds=1)]
    response = client.put(POLICY, json={"levels": levels, "repeat": 5}, headers=auth("admin"))
    assert response.status_code == 200, response.text
    assert [item["after_seconds"] for item in response.json()["levels"]] == [86_400] * 9 + [1]


INVALID_POLICIES = {
    "no-levels": {"levels": []},
    "levels-missing": {"repeat": 0},
    "11-levels": {"levels": [level()] * 11},
    "after-0": {"levels": [level(after_seconds=0)]},
    "after-86401": {"levels": [level(after_seconds=86_401)]},
    "after-not-int": {"levels": [level(after_seconds=1.5)]},
    # No coercion (lax mode stored ``true`` as 1 and ``"5"`` as 5).
    "after-true": {"levels": [level(after_seconds=True)]},
    "after-string": {"levels": [level(after_seconds="5")]},
    "after-whole-float": {"levels": [level(after_seconds=5.0)]},
    "repeat-true": {"levels": [level()], "repeat": True},
    "repeat-string": {"levels": [level()], "repeat": "1"},
    "repeat-6": {"levels": [level()], "repeat": 6},
    "repeat-negative": {"levels": [level()], "repeat": -1},
    "unknown-target": {"levels": [level("everyone")]},
    "unknown-mode": {"levels": [level(mode="round_robin")]},
    "team-without-team-id": {"levels": [level("team")]},
    "team-id-on-all-seniors": {"levels": [level(team_id=str(uuid.uuid4()))]},
    "team-id-on-domain-team": {"levels": [level("domain_team", team_id=str(uuid.uuid4()))]},
    "extra-field": {"levels": [level(colour="red")]},
}


@pytest.mark.parametrize("body", INVALID_POLICIES.values(), ids=INVALID_POLICIES.keys())
def test_invalid_policies_are_422_and_change_nothing(
    client: TestClient, auth: TokenFactory, unchanged: Callable[[], None], body: dict[str, Any]
) -> None:
    client.put(POLICY, json={"levels": [level(after_seconds=42)]}, headers=auth("admin"))
    unchanged()
    assert_error(client.put(POLICY, json=body, headers=auth("admin")), 422, "validation_error")
    unchanged()


@pytest.mark.parametrize(
    "team_id", [str(uuid.uuid4()), "not-a-uuid"], ids=["unknown-uuid", "not-a-uuid"]
)
def test_a_policy_naming_a_missing_team_is_unknown_team(
    client: TestClient, auth: TokenFactory, unchanged: Callable[[], None], team_id: str
) -> None:
    team = make_team(client, auth)
    unchanged()
    levels = [level("team", team_id=team["id"]), level("team", team_id=team_id)]
    body = assert_error(client.put(POLICY, json={"levels": levels}, headers=auth("admin")), 422)
    assert (body["error"], body["team_id"], body["level"]) == ("unknown_team", team_id, 2)
    unchanged()


def test_a_team_the_policy_names_cannot_be_deleted(
    client: TestClient, auth: TokenFactory, unchanged: Callable[[], None]
) -> None:
    team = make_team(client, auth)
    levels = [level(), level("team", team_id=team["id"])]
    client.put(POLICY, json={"levels": levels}, headers=auth("admin"))
    unchanged()
    response = client.delete(f"{TEAMS}/{team['id']}", headers=auth("admin"))
    assert assert_error(response, 409, "team_in_use")["levels"] == [2]
    unchanged()
    client.put(POLICY, json={"levels": [level()]}, headers=auth("admin"))
    assert client.delete(f"{TEAMS}/{team['id']}", headers=auth("admin")).status_code == 204


def test_a_delete_racing_a_policy_is_settled_by_the_database(
    client: TestClient, auth: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = make_team(client, auth)
    client.put(POLICY, json={"levels": [level("team", team_id=team["id"])]}, headers=auth("admin"))
    calls = skip_first_check(monkeypatch, "_refuse_in_use")
    response = client.delete(f"{TEAMS}/{team['id']}", headers=auth("admin"))
    assert_error(response, 409, "team_in_use")
    assert len(calls) == 2
    assert client.get(f"{TEAMS}/{team['id']}", headers=auth("admin")).status_code == 200


@pytest.mark.parametrize("org", ["acme", "globex"])
def test_a_policy_racing_a_delete_is_settled_by_the_database(
    client: TestClient, auth: TokenFactory, monkeypatch: pytest.MonkeyPatch, org: str
) -> None:
    """The team check passes, then the team is gone (or was never the org's): the
    levels' (org_id, team_id) foreign key refuses the row, the retry reports it."""
    team = make_team(client, auth)
    if org == "acme":
        client.delete(f"{TEAMS}/{team['id']}", headers=auth("admin"))
    calls = skip_first_check(monkeypatch, "_named_teams")
    body = {"levels": [level("team", team_id=team["id"])]}
    response = client.put(POLICY, json=body, headers=auth("admin", org=org))
    assert_error(response, 422, "unknown_team")
    assert len(calls) == 2
    assert client.get(POLICY, headers=auth("admin", org=org)).json()["is_default"] is True
