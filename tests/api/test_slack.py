"""The Slack app's HTTP edge (issue 21): the connection, links, and the
interactivity endpoint's signature checks and click outcomes, on SQLite and
PostgreSQL, with a local stub of Slack's Web API and ``response_url``."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine

from services.api.app import create_app
from shared.core.settings import Settings
from testkit import log_leaks
from tests.api.helpers import assert_error, create
from tests.conftest import TokenFactory
from tests.stubs.slack_stub import SlackStub, click_payload, signed_interaction

SLACK = "/api/v1/integrations/slack"
BOT_TOKEN = log_leaks.register_secret("xoxb-1111-2222-" + "a1b2c3d4e5" * 2)
SIGNING_SECRET = log_leaks.register_secret("slack-signing-" + "f00d" * 8)
WORKSPACE = "T0ACME"
CHANNEL = "C0QUEUE"


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    with SlackStub(BOT_TOKEN) as stub:
        yield stub


@pytest.fixture
def slack_client(
    settings: Settings, engine: Engine, redis: Redis, stub: SlackStub
) -> Iterator[TestClient]:
    configured = settings.model_copy(
        update={
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": stub.api_url,
            "public_url": "https://esc.example.test",
        }
    )
    with TestClient(create_app(configured)) as client:
        yield client


def connect(client: TestClient, auth: TokenFactory, **changes: Any) -> dict[str, Any]:
    body = {"workspace_id": WORKSPACE, "bot_token": BOT_TOKEN, "channel": CHANNEL, **changes}
    response = client.put(SLACK, json=body, headers=auth("admin"))
    assert response.status_code == 200, response.text
    return response.json()


def click(
    client: TestClient,
    stub: SlackStub,
    *,
    user: str,
    value: str,
    action: str = "claim",
    workspace: str = WORKSPACE,
) -> dict[str, Any]:
    """One signed click; returns the one ephemeral it got (``response_url``)."""
    payload = click_payload(
        workspace=workspace,
        user=user,
        action=action,
        value=value,
        response_url=stub.response_url(user),
    )
    body, headers = signed_interaction(SIGNING_SECRET, payload, timestamp=int(time.time()))
    before = len(stub.responses(user))
    response = client.post(f"{SLACK}/interactions", content=body, headers=headers)
    assert response.status_code == 200, response.text
    answers = stub.responses(user)[before:]
    assert len(answers) == 1, answers
    assert answers[0]["response_type"] == "ephemeral"
    return answers[0]


def link(client: TestClient, auth: TokenFactory, slack_user: str, role: str, **who: str) -> None:
    body = {"user_id": who["sub"], "user_name": who["name"], "role": role}
    response = client.put(f"{SLACK}/links/{slack_user}", json=body, headers=auth("admin"))
    assert response.status_code == 200, response.text


# --- connection ---------------------------------------------------------------------


def test_connection_never_shows_the_token(slack_client: TestClient, auth: TokenFactory) -> None:
    answer = connect(slack_client, auth)
    assert set(answer) == {"workspace_id", "channel", "connected_at"}
    got = slack_client.get(SLACK, headers=auth("admin"))
    assert got.status_code == 200 and got.json() == answer
    assert BOT_TOKEN not in got.text
    assert_error(slack_client.get(SLACK, headers=auth("senior")), 403)
    audit = slack_client.get("/api/v1/audit", headers=auth("admin"))
    assert audit.json()["items"][0]["kind"] == "slack.connected"
    assert BOT_TOKEN not in audit.text
    assert slack_client.delete(SLACK, headers=auth("admin")).status_code == 204
    assert_error(slack_client.get(SLACK, headers=auth("admin")), 404, "slack_not_connected")
    assert_error(slack_client.delete(SLACK, headers=auth("admin")), 404, "slack_not_connected")


def test_a_workspace_belongs_to_one_org(slack_client: TestClient, auth: TokenFactory) -> None:
    connect(slack_client, auth)
    connect(slack_client, auth, channel="C0OTHER")  # the same org may change it
    body = {"workspace_id": WORKSPACE, "bot_token": BOT_TOKEN, "channel": CHANNEL}
    taken = slack_client.put(SLACK, json=body, headers=auth("admin", org="globex"))
    assert_error(taken, 409, "workspace_taken")
    assert_error(slack_client.get(SLACK, headers=auth("admin", org="globex")), 404)


@pytest.mark.parametrize(
    "change",
    [
        {"workspace_id": "acme"},
        {"bot_token": "xoxp-user-token-1234567890"},
        {"channel": "#general"},
        {"extra": 1},
    ],
)
def test_bad_connections_are_422_and_never_echo_the_token(
    slack_client: TestClient, auth: TokenFactory, change: dict[str, Any]
) -> None:
    body = {"workspace_id": WORKSPACE, "bot_token": BOT_TOKEN, "channel": CHANNEL, **change}
    response = slack_client.put(SLACK, json=body, headers=auth("admin"))
    assert_error(response, 422)
    assert BOT_TOKEN not in response.text
    assert_error(slack_client.get(SLACK, headers=auth("admin")), 404)


# --- links -------------------------------------------------------------------------


def test_an_unlinked_user_gets_a_one_time_link(
    slack_client: TestClient, auth: TokenFactory, stub: SlackStub
) -> None:
    connect(slack_client, auth)
    handoff = create(slack_client, auth("engineer"))
    answer = click(slack_client, stub, user="U0DANA", value=handoff["id"])
    prefix = "https://esc.example.test/#/slack/link?code="
    assert prefix in answer["text"]
    code = answer["text"].split(prefix)[1].split("|")[0]
    dana = auth("senior", sub="dana", name="Dana Senior")
    # Another org's person cannot use it, and that does not use it up.
    other = slack_client.post(
        f"{SLACK}/links", json={"code": code}, headers=auth("senior", org="globex")
    )
    assert_error(other, 404, "link_code_invalid")
    linked = slack_client.post(f"{SLACK}/links", json={"code": code}, headers=dana)
    assert linked.status_code == 201, linked.text
    assert linked.json()["slack_user_id"] == "U0DANA"
    assert linked.json()["user_name"] == "Dana Senior"
    again = slack_client.post(f"{SLACK}/links", json={"code": code}, headers=dana)
    assert_error(again, 404, "link_code_invalid")
    listed = slack_client.get(f"{SLACK}/links", headers=auth("admin")).json()["items"]
    assert [item["user_id"] for item in listed] == ["dana"]
    row = slack_client.get("/api/v1/audit", headers=auth("admin")).json()["items"][0]
    assert (row["kind"], row["actor_id"], row["target_id"]) == (
        "slack_link.updated",
        "dana",
        "U0DANA",
    )
    # Now the click claims.
    assert click(slack_client, stub, user="U0DANA", value=handoff["id"])["text"] == (
        "You claimed this escalation."
    )
    got = slack_client.get(f"/api/v1/handoffs/{handoff['id']}", headers=dana).json()
    assert got["status"] == "claimed" and got["claimed_by_id"] == "dana"


def test_admin_links(slack_client: TestClient, auth: TokenFactory) -> None:
    link(slack_client, auth, "U0SAM", "senior", sub="sam", name="Sam Senior")
    assert_error(
        slack_client.put(
            f"{SLACK}/links/U0SAM", json={"user_id": "x", "user_name": "X"}, headers=auth("senior")
        ),
        403,
    )
    assert_error(
        slack_client.put(
            f"{SLACK}/links/not-a-slack-id", json={"user_id": "x", "user_name": "X"},
            headers=auth("admin"),
        ),
        422,
    )  # fmt: skip
    items = slack_client.get(f"{SLACK}/links", headers=auth("admin")).json()["items"]
    assert [(item["slack_user_id"], item["role"]) for item in items] == [("U0SAM", "senior")]
    assert slack_client.get(f"{SLACK}/links", headers=auth("admin", org="globex")).json() == {
        "items": []
    }
    assert slack_client.delete(f"{SLACK}/links/U0SAM", headers=auth("admin")).status_code == 204
    assert_error(slack_client.delete(f"{SLACK}/links/U0SAM", headers=auth("admin")), 404)


# --- interactions ------------------------------------------------------------------


def test_claim_race_losers_are_told_who_won(
    slack_client: TestClient, auth: TokenFactory, stub: SlackStub
) -> None:
    connect(slack_client, auth)
    link(slack_client, auth, "U0DANA", "senior", sub="dana", name="Dana Senior")
    link(slack_client, auth, "U0SAM", "senior", sub="sam", name="Sam Senior")
    link(slack_client, auth, "U0JO", "engineer", sub="jo", name="Jo Junior")
    handoff = create(slack_client, auth("engineer"))
    engineer = click(slack_client, stub, user="U0JO", value=handoff["id"])
    assert "Only seniors can claim" in engineer["text"]
    assert click(slack_client, stub, user="U0DANA", value=handoff["id"])["text"] == (
        "You claimed this escalation."
    )
    lost = click(slack_client, stub, user="U0SAM", value=handoff["id"])["text"]
    assert lost.startswith("Already claimed by Dana Senior ") and lost.endswith(" seconds ago.")
    http = slack_client.post(
        f"/api/v1/handoffs/{handoff['id']}/claim", headers=auth("senior", sub="kim")
    )
    assert_error(http, 409, "handoff_already_claimed")
    assert http.json()["claimed_by_name"] == "Dana Senior"


def test_release_from_slack_and_a_closed_handoff(
    slack_client: TestClient, auth: TokenFactory, stub: SlackStub
) -> None:
    connect(slack_client, auth)
    link(slack_client, auth, "U0DANA", "senior", sub="dana", name="Dana Senior")
    handoff = create(slack_client, auth("engineer"))
    click(slack_client, stub, user="U0DANA", value=handoff["id"])
    released = click(slack_client, stub, user="U0DANA", value=handoff["id"], action="release")
    assert "released" in released["text"]
    cancel = slack_client.post(f"/api/v1/handoffs/{handoff['id']}/cancel", headers=auth("engineer"))
    assert cancel.status_code == 200, cancel.text
    closed = click(slack_client, stub, user="U0DANA", value=handoff["id"])
    assert closed["text"] == "This escalation is cancelled already."
    missing = click(slack_client, stub, user="U0DANA", value="not-a-handoff")
    assert missing["text"] == "This escalation no longer exists."


def test_an_unconnected_workspace_is_told_so(
    slack_client: TestClient, auth: TokenFactory, stub: SlackStub
) -> None:
    answer = click(slack_client, stub, user="U0DANA", value="x", workspace="T0NOBODY")
    assert "not connected" in answer["text"]


def _claim_body(stub: SlackStub, handoff_id: str) -> dict[str, Any]:
    return click_payload(
        workspace=WORKSPACE,
        user="U0DANA",
        action="claim",
        value=handoff_id,
        response_url=stub.response_url("U0DANA"),
    )


def test_bad_signatures_are_401_and_change_nothing(
    slack_client: TestClient, auth: TokenFactory, stub: SlackStub
) -> None:
    connect(slack_client, auth)
    link(slack_client, auth, "U0DANA", "senior", sub="dana", name="Dana Senior")
    handoff = create(slack_client, auth("engineer"))
    now = int(time.time())
    url = f"{SLACK}/interactions"
    body, headers = signed_interaction(
        SIGNING_SECRET, _claim_body(stub, handoff["id"]), timestamp=now
    )
    wrong_secret = signed_interaction(
        "not-the-secret", _claim_body(stub, handoff["id"]), timestamp=now
    )
    stale = signed_interaction(
        SIGNING_SECRET, _claim_body(stub, handoff["id"]), timestamp=now - 360
    )
    replayed = {**headers, "X-Slack-Request-Timestamp": str(now + 1)}
    tampered = body.replace(b"claim", b"clain")
    attempts = [
        (wrong_secret[0], wrong_secret[1]),
        (stale[0], stale[1]),
        (body, replayed),
        (tampered, headers),
        (body, {**headers, "X-Slack-Signature": ""}),
        (body, {**headers, "X-Slack-Request-Timestamp": "soon"}),
        (body, {"Content-Type": headers["Content-Type"]}),
    ]
    for attempt_body, attempt_headers in attempts:
        response = slack_client.post(url, content=attempt_body, headers=attempt_headers)
        assert_error(response, 401, "invalid_slack_signature")
    got = slack_client.get(f"/api/v1/handoffs/{handoff['id']}", headers=auth("senior")).json()
    assert got["status"] == "pending"
    assert stub.responses("U0DANA") == []


def test_malformed_payloads_are_422(slack_client: TestClient) -> None:
    bodies = [
        b"payload=not-json",
        b"nothing=here",
        b"payload=%7B%22type%22%3A%22block_actions%22%7D",  # no team, user, actions
    ]
    for body in bodies:
        timestamp = str(int(time.time()))
        signature = SignatureVerifier(SIGNING_SECRET).generate_signature(
            timestamp=timestamp, body=body
        )
        headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": str(signature)}
        response = slack_client.post(f"{SLACK}/interactions", content=body, headers=headers)
        assert_error(response, 422, "invalid_slack_payload")


def test_interactions_are_404_without_a_signing_secret(client: TestClient) -> None:
    body, headers = signed_interaction("whatever", {}, timestamp=int(time.time()))
    response = client.post(f"{SLACK}/interactions", content=body, headers=headers)
    assert_error(response, 404, "slack_not_configured")


def test_a_team_may_name_its_slack_channel(slack_client: TestClient, auth: TokenFactory) -> None:
    body = {"name": "Platform", "domains": ["kubernetes"], "slack_channel": "C0PLATFORM"}
    created = slack_client.post("/api/v1/teams", json=body, headers=auth("admin"))
    assert created.status_code == 201, created.text
    assert created.json()["slack_channel"] == "C0PLATFORM"
    team_url = f"/api/v1/teams/{created.json()['id']}"
    cleared = slack_client.put(team_url, json={"name": "Platform"}, headers=auth("admin"))
    assert cleared.json()["slack_channel"] is None
    bad = slack_client.put(
        team_url, json={"name": "Platform", "slack_channel": "#ops"}, headers=auth("admin")
    )
    assert_error(bad, 422)


def test_erasing_a_person_removes_their_slack_links(
    slack_client: TestClient, auth: TokenFactory
) -> None:
    link(slack_client, auth, "U0DANA", "senior", sub="dana", name="Dana Senior")
    link(slack_client, auth, "U0SAM", "senior", sub="sam", name="Sam Senior")
    erased = slack_client.post("/api/v1/people/dana/erase", headers=auth("admin"))
    assert erased.status_code == 200, erased.text
    assert erased.json()["removed_slack_links"] == 1
    items = slack_client.get(f"{SLACK}/links", headers=auth("admin")).json()["items"]
    assert [item["slack_user_id"] for item in items] == ["U0SAM"]


def test_another_orgs_workspace_cannot_claim(
    slack_client: TestClient, auth: TokenFactory, stub: SlackStub
) -> None:
    """The org is the clicking workspace's: a senior of globex's workspace who
    clicks with an acme handoff's id finds nothing, and nothing changes."""
    connect(slack_client, auth)
    globex = {"workspace_id": "T0GLOBEX", "bot_token": BOT_TOKEN, "channel": "C0GLOBEX"}
    assert slack_client.put(SLACK, json=globex, headers=auth("admin", org="globex")).is_success
    body = {"user_id": "gus", "user_name": "Gus Globex", "role": "senior"}
    linked = slack_client.put(
        f"{SLACK}/links/U0GUS", json=body, headers=auth("admin", org="globex")
    )
    assert linked.status_code == 200, linked.text
    handoff = create(slack_client, auth("engineer"))
    answer = click(slack_client, stub, user="U0GUS", value=handoff["id"], workspace="T0GLOBEX")
    assert answer["text"] == "This escalation no longer exists."
    got = slack_client.get(f"/api/v1/handoffs/{handoff['id']}", headers=auth("senior")).json()
    assert got["status"] == "pending"
