"""The bot's message (issue 21): Slack's Block Kit limits for the longest
handoff the API accepts, escaped user text, the buttons per status and a
status line in plain words."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shared.handoffs.models import HandoffPublic
from shared.slack.messages import ACTIONS_MAX, BLOCKS_MAX, render, status_text
from shared.webhooks.payloads import BUTTON_MAX, HEADER_MAX, SECTION_MAX
from testkit.samples import handoff_body

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "worker" / "slack_message.schema.json").read_text()
)
PUBLIC_URL = "https://esc.example.test"
HOSTILE = "<!channel> <@U0BOSS> *bold* <https://evil.example|click me> & `code`"


def handoff(**changes: Any) -> HandoffPublic:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    body = handoff_body()
    data: dict[str, Any] = {
        "id": "7d5c6f0e-0000-4000-8000-000000000001",
        "org_id": "acme",
        "session_id": body["session_id"],
        "status": "pending",
        "priority": "urgent",
        "created_by_id": "jo",
        "created_by_name": "Jo Junior",
        "created_at": now,
        "updated_at": now,
        "engineer_notes": "",
        "snapshot": body["snapshot"],
        "assessment_status": "pending",
        "ai_assessment_data": None,
        "claimed_by_id": None,
        "claimed_by_name": None,
        "claimed_at": None,
        "resolved_at": None,
        "resolution_notes": None,
    }
    data.update(changes)
    return HandoffPublic.model_validate(data)


def texts(message: dict[str, Any]) -> list[str]:
    """Every text Slack would parse: the top-level text and each text object's."""
    found = [message["text"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text"):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message["blocks"])
    return found


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [actions] = [block for block in message["blocks"] if block["type"] == "actions"]
    return {button["action_id"]: button for button in actions["elements"]}


@pytest.mark.parametrize("status", ["pending", "claimed", "resolved", "cancelled"])
def test_the_longest_handoff_stays_within_slacks_limits(status: str) -> None:
    snapshot = dict(handoff_body()["snapshot"])  # type: ignore[call-overload]
    snapshot.update(problem_summary="&" * 2_000, problem_domain="<" * 64)
    long_name = "N" * 256
    message = render(
        handoff(
            status=status,
            snapshot=snapshot,
            created_by_name=long_name,
            claimed_by_name=long_name if status != "pending" else None,
            claimed_at=datetime(2026, 12, 7, 12, 1, tzinfo=UTC) if status != "pending" else None,
            assigned_to_name=long_name if status == "pending" else None,
            escalation_target={"target": "team", "team_id": "t", "team_name": "T" * 64},
        ),
        public_url=PUBLIC_URL,
    )
    jsonschema.validate(message, SCHEMA)  # Block Kit's shapes and lengths
    assert len(message["blocks"]) <= BLOCKS_MAX
    for block in message["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= HEADER_MAX
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= SECTION_MAX
        if block["type"] == "actions":
            assert len(block["elements"]) <= ACTIONS_MAX
            assert all(len(b["text"]["text"]) <= BUTTON_MAX for b in block["elements"])
    assert len(message["text"]) <= SECTION_MAX


def test_user_text_is_never_a_mention_or_a_link() -> None:
    snapshot = dict(handoff_body()["snapshot"])  # type: ignore[call-overload]
    snapshot.update(problem_summary=HOSTILE, problem_domain=HOSTILE[:64])
    message = render(
        handoff(snapshot=snapshot, created_by_name=HOSTILE, assigned_to_name=HOSTILE),
        public_url=PUBLIC_URL,
    )
    for text in texts(message):
        assert "<" not in text and ">" not in text, text
    assert "&lt;!channel&gt;" in message["text"]


def test_pending_has_claim_and_open() -> None:
    message = render(handoff(), public_url=PUBLIC_URL)
    found = buttons(message)
    assert set(found) == {"claim", "open"}
    assert found["claim"]["value"] == "7d5c6f0e-0000-4000-8000-000000000001"
    assert found["open"]["url"] == f"{PUBLIC_URL}/#/handoff/7d5c6f0e-0000-4000-8000-000000000001"
    assert message["text"].startswith("Waiting for a senior: ")


def test_claimed_names_the_claimer_and_offers_release_not_claim() -> None:
    claimed = handoff(
        status="claimed",
        claimed_by_id="dana",
        claimed_by_name="Dana Senior",
        claimed_at=datetime(2026, 12, 7, 12, 1, tzinfo=UTC),
    )
    message = render(claimed, public_url=PUBLIC_URL)
    assert set(buttons(message)) == {"release", "open"}
    assert message["text"].startswith("Claimed by Dana Senior: ")
    assert "2026-12-07T12:01:00" in json.dumps(message["blocks"])


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"status": "resolved", "claimed_by_name": "Dana Senior"}, "Resolved by Dana Senior"),
        ({"status": "cancelled"}, "Cancelled"),
        ({"assigned_to_name": "Sam Senior"}, "Waiting for a senior (assigned to Sam Senior)"),
    ],
)
def test_status_in_plain_words(changes: dict[str, Any], expected: str) -> None:
    closed = handoff(**changes)
    assert status_text(closed) == expected
    if closed.status in ("resolved", "cancelled"):
        assert set(buttons(render(closed, public_url=PUBLIC_URL))) == {"open"}
