"""The audit log on SQLite and PostgreSQL: every configuration route writes exactly
one row naming the admin, the kind, the target and before/after without secrets;
the log cannot be changed through the API; another org's rows never show."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.core.settings import Settings
from tests.api.helpers import HANDOFFS, assert_error
from tests.conftest import TokenFactory

AUDIT = "/api/v1/audit"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Webhooks here point at 127.0.0.1 (nothing is sent: no worker runs)."""
    return settings.model_copy(update={"webhook_allow_private_networks": True})


@dataclass(frozen=True)
class Change:
    """One configuration route: ``call`` makes the change (after ``prepare``)
    and returns the target id the row must name (or None)."""

    kind: str
    call: Callable[[TestClient, dict[str, str], Any], str | None]
    prepare: Callable[[TestClient, TokenFactory], Any] = lambda client, auth: None


def _ok(response: Any) -> Any:
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def _resolved_handoff(client: TestClient, auth: TokenFactory) -> str:
    body = {
        "session_id": "sess-audit",
        "snapshot": {
            "problem_summary": "disk full on db-1",
            "problem_domain": "database",
            "status": "stuck",
            "step_count": 1,
            "confidence_tier": "low",
        },
    }
    handoff = _ok(client.post(HANDOFFS, json=body, headers=auth("engineer")))
    url = f"{HANDOFFS}/{handoff['id']}"
    _ok(client.post(f"{url}/claim", headers=auth("admin")))
    _ok(client.post(f"{url}/resolve", json={"resolution_notes": "freed"}, headers=auth("admin")))
    return str(handoff["id"])


SLACK = "/api/v1/integrations/slack"
SLACK_CONNECTION = {
    "workspace_id": "T0AUDIT",
    "bot_token": "xoxb-0000-audit-" + "x" * 20,
    "channel": "C0AUDIT",
}
SLACK_LINK = {"user_id": "dana", "user_name": "Dana Senior"}


def _slack_connected(client: TestClient, auth: TokenFactory) -> None:
    _ok(client.put(SLACK, json=SLACK_CONNECTION, headers=auth("admin")))


def _slack_linked(client: TestClient, auth: TokenFactory) -> None:
    _ok(client.put(f"{SLACK}/links/U0DANA", json=SLACK_LINK, headers=auth("admin")))


RETENTION_DAYS = {"handoff_content_days": 30, "event_days": 0, "delivery_days": 7}
REDACTION = {"enabled": True, "patterns": [{"name": "employee id", "regex": r"EMP-\d{5}"}]}
TEAM = {"name": "Databases", "members": [{"id": "dana", "name": "Dana Senior"}], "domains": ["db"]}
POLICY = {"levels": [{"after_seconds": 60, "target": "all_seniors", "mode": "broadcast"}]}


def _team(client: TestClient, auth: TokenFactory) -> str:
    return str(_ok(client.post("/api/v1/teams", json=TEAM, headers=auth("admin")))["id"])


def _api_key(client: TestClient, auth: TokenFactory) -> str:
    body = {"name": "assistant backend", "role": "engineer"}
    return str(_ok(client.post("/api/v1/api-keys", json=body, headers=auth("admin")))["id"])


WEBHOOK = {"url": "http://127.0.0.1:9/hook", "events": ["handoff_created"]}


def _webhook(client: TestClient, auth: TokenFactory) -> str:
    return str(_ok(client.post("/api/v1/webhooks", json=WEBHOOK, headers=auth("admin")))["id"])


CHANGES = [
    Change(
        "webhook.created",
        lambda client, admin, _: _ok(client.post("/api/v1/webhooks", json=WEBHOOK, headers=admin))[
            "id"
        ],
    ),
    Change(
        "webhook.updated",
        lambda client, admin, hook_id: _ok(
            client.patch(f"/api/v1/webhooks/{hook_id}", json={"enabled": False}, headers=admin)
        )["id"],
        prepare=_webhook,
    ),
    Change(
        "webhook.secret_rotated",
        lambda client, admin, hook_id: _ok(
            client.post(f"/api/v1/webhooks/{hook_id}/rotate-secret", headers=admin)
        )["id"],
        prepare=_webhook,
    ),
    Change(
        "webhook.deleted",
        lambda client, admin, hook_id: (
            _ok(client.delete(f"/api/v1/webhooks/{hook_id}", headers=admin)) or hook_id
        ),
        prepare=_webhook,
    ),
    Change(
        "api_key.created",
        lambda client, admin, _: _ok(
            client.post("/api/v1/api-keys", json={"name": "ci", "role": "senior"}, headers=admin)
        )["id"],
    ),
    Change(
        "api_key.revoked",
        lambda client, admin, key_id: (
            _ok(client.delete(f"/api/v1/api-keys/{key_id}", headers=admin)) or key_id
        ),
        prepare=_api_key,
    ),
    Change(
        "team.created",
        lambda client, admin, _: _ok(client.post("/api/v1/teams", json=TEAM, headers=admin))["id"],
    ),
    Change(
        "team.replaced",
        lambda client, admin, team_id: _ok(
            client.put(f"/api/v1/teams/{team_id}", json={**TEAM, "name": "DB"}, headers=admin)
        )["id"],
        prepare=_team,
    ),
    Change(
        "team.deleted",
        lambda client, admin, team_id: (
            _ok(client.delete(f"/api/v1/teams/{team_id}", headers=admin)) or team_id
        ),
        prepare=_team,
    ),
    Change(
        "policy.updated",
        lambda client, admin, _: (
            _ok(client.put("/api/v1/escalation-policy", json=POLICY, headers=admin)) and None
        ),
    ),
    Change(
        "retention.updated",
        lambda client, admin, _: (
            _ok(client.put("/api/v1/settings/retention", json=RETENTION_DAYS, headers=admin))
            and None
        ),
    ),
    Change(
        "redaction.updated",
        lambda client, admin, _: (
            _ok(client.put("/api/v1/settings/redaction", json=REDACTION, headers=admin)) and None
        ),
    ),
    Change(
        "handoff.purged",
        lambda client, admin, handoff_id: _ok(
            client.post(f"{HANDOFFS}/{handoff_id}/purge", headers=admin)
        )["id"],
        prepare=_resolved_handoff,
    ),
    Change(
        "slack.connected",
        lambda client, admin, _: _ok(client.put(SLACK, json=SLACK_CONNECTION, headers=admin))[
            "workspace_id"
        ],
    ),
    Change(
        "slack.disconnected",
        lambda client, admin, _: _ok(client.delete(SLACK, headers=admin)) or "T0AUDIT",
        prepare=_slack_connected,
    ),
    Change(
        "slack_link.updated",
        lambda client, admin, _: _ok(
            client.put(f"{SLACK}/links/U0DANA", json=SLACK_LINK, headers=admin)
        )["slack_user_id"],
    ),
    Change(
        "slack_link.deleted",
        lambda client, admin, _: (
            _ok(client.delete(f"{SLACK}/links/U0DANA", headers=admin)) or "U0DANA"
        ),
        prepare=_slack_linked,
    ),
    Change(
        "person.erased",
        lambda client, admin, _: _ok(client.post("/api/v1/people/gone-1/erase", headers=admin))[
            "user_id"
        ],
    ),
]


@pytest.mark.parametrize("change", CHANGES, ids=[change.kind for change in CHANGES])
def test_each_configuration_route_writes_one_row(
    client: TestClient, auth: TokenFactory, change: Change
) -> None:
    admin = auth("admin", sub="ada", name="Ada Admin")
    prepared = change.prepare(client, auth)
    before = _ok(client.get(AUDIT, headers=admin))["items"]
    target_id = change.call(client, admin, prepared)
    after = _ok(client.get(AUDIT, headers=admin))["items"]
    new = after[: len(after) - len(before)]
    assert [(row["kind"], row["actor_id"], row["actor_name"]) for row in new] == [
        (change.kind, "ada", "Ada Admin")
    ]
    assert new[0]["target_id"] == target_id


def test_before_and_after_are_recorded(client: TestClient, auth: TokenFactory) -> None:
    admin = auth("admin")
    _ok(client.put("/api/v1/settings/retention", json=RETENTION_DAYS, headers=admin))
    again = {**RETENTION_DAYS, "event_days": 90}
    _ok(client.put("/api/v1/settings/retention", json=again, headers=admin))
    newest = _ok(client.get(AUDIT, headers=admin))["items"][0]
    assert newest["before"]["event_days"] == 0 and newest["after"]["event_days"] == 90


def test_the_log_cannot_be_changed_through_the_api(client: TestClient, auth: TokenFactory) -> None:
    admin = auth("admin")
    _ok(client.put("/api/v1/settings/retention", json=RETENTION_DAYS, headers=admin))
    [row] = _ok(client.get(AUDIT, headers=admin))["items"]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.request(method, AUDIT, headers=admin).status_code == 405
        assert client.request(method, f"{AUDIT}/{row['id']}", headers=admin).status_code in (
            404,
            405,
        )
    assert _ok(client.get(AUDIT, headers=admin))["items"] == [row]


def test_only_admins_read_it_and_only_their_orgs_rows(
    client: TestClient, auth: TokenFactory
) -> None:
    _ok(client.put("/api/v1/settings/retention", json=RETENTION_DAYS, headers=auth("admin")))
    for role in ("engineer", "senior"):
        assert_error(client.get(AUDIT, headers=auth(role)), 403)
    assert _ok(client.get(AUDIT, headers=auth("admin", org="globex")))["items"] == []


def test_filters_and_pages(client: TestClient, auth: TokenFactory) -> None:
    ada, bob = auth("admin", sub="ada"), auth("admin", sub="bob")
    for days in range(1, 6):
        body = {**RETENTION_DAYS, "delivery_days": days}
        _ok(client.put("/api/v1/settings/retention", json=body, headers=ada if days % 2 else bob))
    _ok(client.post("/api/v1/people/gone-2/erase", headers=ada))
    by_bob = _ok(client.get(AUDIT, params={"actor_id": "bob"}, headers=ada))["items"]
    assert [row["after"]["delivery_days"] for row in by_bob] == [4, 2]
    erased = _ok(client.get(AUDIT, params={"kind": "person.erased"}, headers=ada))["items"]
    assert [row["target_id"] for row in erased] == ["gone-2"]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = _ok(client.get(AUDIT, params=params, headers=ada))
        seen += [row["id"] for row in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)
    assert_error(client.get(AUDIT, params={"cursor": "bogus"}, headers=ada), 422, "invalid_cursor")


def test_no_secret_reaches_a_row(client: TestClient, auth: TokenFactory) -> None:
    admin = auth("admin")
    created = _ok(
        client.post("/api/v1/api-keys", json={"name": "ci", "role": "senior"}, headers=admin)
    )
    assert created["key"].startswith("esk_")
    hook = _ok(client.post("/api/v1/webhooks", json=WEBHOOK, headers=admin))
    rotated = _ok(client.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=admin))
    stored = json.dumps(_ok(client.get(AUDIT, headers=admin))["items"])
    assert hook["secret"] not in stored and rotated["secret"] not in stored
    assert "whsec_" not in stored
    assert "api_key.created" in stored and created["key"] not in stored
    # The shown prefix identifies the key; no longer piece of it is recorded.
    assert created["key"][: len(created["prefix"]) + 4] not in stored
