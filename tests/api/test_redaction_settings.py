"""``GET``/``PUT /api/v1/settings/redaction`` and what the settings do to a
create, over HTTP on SQLite and PostgreSQL."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import HANDOFFS, assert_error, create, get
from tests.conftest import TokenFactory, handoff_body
from tests.redaction_corpus import GHP, SK_LIVE

SETTINGS = "/api/v1/settings/redaction"
EMPLOYEE = {"name": "employee id", "regex": r"EMP-\d{5}"}


def put(client: TestClient, auth: TokenFactory, body: dict[str, Any], org: str = "acme") -> Any:
    response = client.put(SETTINGS, json=body, headers=auth("admin", org=org))
    assert response.status_code == 200, response.text
    return response.json()


def summary_body(session_id: str, summary: str) -> dict[str, Any]:
    snapshot = {**handoff_body()["snapshot"], "problem_summary": summary}  # type: ignore[dict-item]
    return handoff_body(session_id, snapshot=snapshot)


def test_an_org_without_settings_has_the_defaults(client: TestClient, auth: TokenFactory) -> None:
    response = client.get(SETTINGS, headers=auth("admin"))
    assert response.status_code == 200, response.text
    assert response.json() == {"enabled": True, "patterns": [], "updated_at": None}


@pytest.mark.parametrize("role", ["engineer", "senior"])
def test_only_admins_read_or_change_the_settings(
    client: TestClient, auth: TokenFactory, role: str
) -> None:
    assert_error(client.get(SETTINGS, headers=auth(role)), 403, "insufficient_role")
    body = {"enabled": False, "patterns": []}
    assert_error(client.put(SETTINGS, json=body, headers=auth(role)), 403, "insufficient_role")
    assert client.get(SETTINGS, headers=auth("admin")).json()["enabled"] is True


def test_org_patterns_redact_a_create_at_once_and_count(
    client: TestClient, auth: TokenFactory
) -> None:
    saved = put(client, auth, {"patterns": [EMPLOYEE]})
    assert saved["enabled"] is True and saved["patterns"] == [EMPLOYEE] and saved["updated_at"]
    assert client.get(SETTINGS, headers=auth("admin")).json() == saved
    [row] = client.get("/api/v1/audit", headers=auth("admin")).json()["items"]
    assert (row["kind"], row["before"]["patterns"], row["after"]["patterns"]) == (
        "redaction.updated",
        [],
        [EMPLOYEE],
    )
    handoff = create(
        client, auth("engineer"), **summary_body("s-1", f"EMP-12345 shared {GHP} in chat")
    )
    assert handoff["snapshot"]["problem_summary"] == (
        "[redacted: employee id] shared [redacted: GitHub token] in chat"
    )
    assert handoff["redactions"] == 2
    assert get(client, auth("senior"), handoff["id"])["redactions"] == 2


def test_an_org_that_turns_redaction_off_stores_text_as_sent(
    client: TestClient, auth: TokenFactory
) -> None:
    put(client, auth, {"enabled": False, "patterns": [EMPLOYEE]})
    text = f"EMP-12345 pasted {SK_LIVE}"
    handoff = create(client, auth("engineer"), **summary_body("s-1", text))
    assert (handoff["snapshot"]["problem_summary"], handoff["redactions"]) == (text, 0)


def test_one_orgs_settings_never_touch_another_orgs_creates(
    client: TestClient, auth: TokenFactory
) -> None:
    put(client, auth, {"enabled": False, "patterns": []}, org="acme")
    put(client, auth, {"patterns": [EMPLOYEE]}, org="globex")
    other = client.get(SETTINGS, headers=auth("admin", org="initech")).json()
    assert other == {"enabled": True, "patterns": [], "updated_at": None}
    text = f"EMP-12345 pasted {SK_LIVE}"
    headers = auth("engineer", org="initech")
    response = client.post(HANDOFFS, json=summary_body("s-1", text), headers=headers)
    assert response.status_code == 201, response.text
    assert (
        response.json()["snapshot"]["problem_summary"] == "EMP-12345 pasted [redacted: Stripe key]"
    )


@pytest.mark.parametrize(
    ("patterns", "code"),
    [
        ([{"name": "broken", "regex": "(unclosed"}], "invalid_redaction_pattern"),
        ([{"name": "everything", "regex": "x*"}], "redaction_pattern_matches_empty"),
        ([{"name": "explodes", "regex": r"(a|aa)+$"}], "redaction_pattern_too_slow"),
        ([{"name": "a]b", "regex": "x"}], "validation_error"),
        ([{"name": "twice", "regex": "x"}, {"name": "twice", "regex": "y"}], "validation_error"),
        ([{"name": f"p{n}", "regex": "x"} for n in range(51)], "validation_error"),
        ([{"name": "no regex"}], "validation_error"),
    ],
)
def test_a_bad_pattern_is_422_with_a_code_and_changes_nothing(
    client: TestClient, auth: TokenFactory, patterns: list[dict[str, str]], code: str
) -> None:
    before = put(client, auth, {"patterns": [EMPLOYEE]})
    audit_rows = client.get("/api/v1/audit", headers=auth("admin")).json()["items"]
    response = client.put(SETTINGS, json={"patterns": [EMPLOYEE, *patterns]}, headers=auth("admin"))
    body = assert_error(response, 422, code)
    if code != "validation_error":
        assert body["pattern"] == patterns[0]["name"]
    assert client.get(SETTINGS, headers=auth("admin")).json() == before
    assert client.get("/api/v1/audit", headers=auth("admin")).json()["items"] == audit_rows


def test_a_retried_create_returns_its_first_answer_after_the_settings_changed(
    client: TestClient, auth: TokenFactory
) -> None:
    headers = {**auth("engineer"), "Idempotency-Key": "k-1"}
    body = summary_body("s-1", f"EMP-12345 pasted {SK_LIVE}")
    first = client.post(HANDOFFS, json=body, headers=headers)
    assert first.status_code == 201, first.text
    put(client, auth, {"patterns": [EMPLOYEE]})
    retried = client.post(HANDOFFS, json=body, headers=headers)
    assert retried.status_code == 201 and retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json() == first.json()
    assert first.json()["snapshot"]["problem_summary"] == "EMP-12345 pasted [redacted: Stripe key]"


def test_resolution_and_reassign_notes_are_redacted_and_counted(
    client: TestClient, auth: TokenFactory
) -> None:
    handoff = create(client, auth("engineer"))
    assert handoff["redactions"] == 0
    ana, ben = auth("senior", sub="u-ana"), auth("senior", sub="u-ben")
    assert client.get("/api/v1/me", headers=ben).status_code == 200  # a known senior now
    client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=ana)
    note = {"to_id": "u-ben", "to_name": "Ben", "note": f"use {GHP}"}
    moved = client.post(f"{HANDOFFS}/{handoff['id']}/reassign", json=note, headers=ana)
    assert moved.status_code == 200 and moved.json()["redactions"] == 1
    notes = {"resolution_notes": f"rotated {SK_LIVE} and {GHP}"}
    resolved = client.post(f"{HANDOFFS}/{handoff['id']}/resolve", json=notes, headers=ben).json()
    assert resolved["resolution_notes"] == (
        "rotated [redacted: Stripe key] and [redacted: GitHub token]"
    )
    assert resolved["redactions"] == 3
    history = client.get(f"{HANDOFFS}/{handoff['id']}/history", headers=ana).json()["items"]
    [reassigned] = [event for event in history if event["type"] == "handoff_reassigned"]
    assert reassigned["data"]["reassignment"]["note"] == "use [redacted: GitHub token]"
    assert [event["handoff"]["redactions"] for event in history] == [0, 0, 1, 3]
