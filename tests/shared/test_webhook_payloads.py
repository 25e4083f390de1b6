"""Pure parts of webhooks: Slack messages for every kind of event (checked
against the Slack schema), signatures against the ``standardwebhooks``
reference, and which addresses count as public."""

import ipaddress
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import standardwebhooks

from shared.webhooks.payloads import TITLES, slack_message
from shared.webhooks.safety import non_public_reason
from shared.webhooks.signing import new_secret, signed_headers
from tests.conftest import handoff_body

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "worker" / "slack_message.schema.json").read_text()
)
PUBLIC_URL = "https://esc.example.com"


def event(type_: str, data: dict[str, Any] | None = None, **handoff: Any) -> dict[str, Any]:
    body = handoff_body()
    return {
        "id": 7,
        "type": type_,
        "handoff_id": "h-1",
        "org_id": "acme",
        "at": "2026-12-03T08:00:00.000000Z",
        "data": data,
        "handoff": {
            "id": "h-1",
            "status": "pending",
            "priority": "high",
            "snapshot": body["snapshot"],
            "escalation_level": 0,
            "escalation_target": {"target": "all_seniors", "team_id": None, "team_name": None},
            "assigned_to_name": None,
            **handoff,
        },
    }


@pytest.mark.parametrize("type_", sorted(TITLES))
def test_every_event_type_makes_a_valid_slack_message(type_: str) -> None:
    message = slack_message(event(type_), public_url=PUBLIC_URL)
    jsonschema.validate(message, SCHEMA)
    assert f"{PUBLIC_URL}/#/handoff/h-1" in message["text"]


def test_a_level_move_names_the_level_and_its_team() -> None:
    escalation = {"level": 1, "loop": 0, "target": "team", "team_id": "t-1", "mode": "broadcast"}
    target = {"target": "team", "team_id": "t-1", "team_name": "Networking"}
    message = slack_message(
        event("handoff_escalated", {"escalation": escalation}, escalation_level=1,
              escalation_target=target),
        public_url=PUBLIC_URL,
    )  # fmt: skip
    jsonschema.validate(message, SCHEMA)
    assert message["blocks"][0]["text"]["text"] == "Escalated to level 2"
    assert message["blocks"][1]["fields"][3]["text"] == "Level: 2 · Networking"


def test_an_assignment_names_the_assignee() -> None:
    assignment = {"assigned_to_id": "u-9", "assigned_to_name": "Kim", "level": 0, "loop": 0}
    message = slack_message(
        event("handoff_assigned", {"assignment": assignment}, assigned_to_name="Kim"),
        public_url=PUBLIC_URL,
    )
    jsonschema.validate(message, SCHEMA)
    assert message["blocks"][0]["text"]["text"] == "Assigned to Kim"
    assert message["blocks"][1]["fields"][3]["text"] == "Assigned to: Kim"


def test_long_and_marked_up_summaries_stay_within_slacks_limits() -> None:
    summary = "<script>&" + "x" * 5000
    message = slack_message(
        event(
            "handoff_created", snapshot={**handoff_body()["snapshot"], "problem_summary": summary}
        ),  # type: ignore[dict-item]
        public_url=PUBLIC_URL,
    )
    jsonschema.validate(message, SCHEMA)
    section = message["blocks"][1]["text"]
    assert section["type"] == "plain_text" and section["text"].startswith("<script>&")
    assert len(section["text"]) <= 3000 and message["text"].startswith("New escalation: &lt;")


# --- user text is never markup (issue 18, item 4) ---------------------------------

HOSTILE = "<!channel> prod is down <https://evil.example|click to fix>"
MARKED_UP = "*not bold* _not italic_ ~not struck~ `not code` ```not a block```"
#: What only markup makes in mrkdwn: a control sequence (mention, link), or a
#: formatting character.
MARKUP = re.compile(r"<|>|[*_~`]")


def text_objects(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every text object of the message's blocks."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("plain_text", "mrkdwn"):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message["blocks"])
    return found


def hostile_messages() -> list[dict[str, Any]]:
    """A message of each event type whose every user text is ``HOSTILE`` or ``MARKED_UP``."""
    snapshot = {**handoff_body()["snapshot"], "problem_summary": f"{HOSTILE} {MARKED_UP}"}
    snapshot["problem_domain"] = "*db*"  # type: ignore[index]
    names = {"claimed_by_name": HOSTILE, "assigned_to_name": MARKED_UP}
    data = {
        "assignment": {"assigned_to_id": "u", "assigned_to_name": HOSTILE, "level": 0, "loop": 0},
        "reassignment": {"from_id": None, "from_name": None, "to_id": "u", "to_name": MARKED_UP,
                         "note": HOSTILE},
    }  # fmt: skip
    return [
        slack_message(event(type_, data, snapshot=snapshot, **names), public_url=PUBLIC_URL)
        for type_ in sorted(TITLES)
    ]


def test_no_mention_link_or_markup_from_user_text_in_the_top_level_text() -> None:
    """The text Slack shows in push notifications: ``<!channel>`` stays text, the
    disguised link is no link, ``*`` ``_`` ``~`` and backticks format nothing."""
    for message in hostile_messages():
        jsonschema.validate(message, SCHEMA)
        text = message["text"]
        link = f"{PUBLIC_URL}/#/handoff/h-1"
        assert text.endswith(f" {link}")
        assert not MARKUP.search(text.removesuffix(link)), text
        assert "&lt;!channel&gt; prod is down &lt;https://evil.example|click to fix&gt;" in text


def test_user_text_in_blocks_is_plain_text_shown_as_typed() -> None:
    for message in hostile_messages():
        objects = text_objects(message)
        for obj in objects:
            if obj["type"] == "mrkdwn":  # ours only, and Slack adds no links to it
                assert obj["verbatim"] is True
                assert "channel" not in obj["text"] and "evil" not in obj["text"]
            else:
                assert obj["emoji"] is False
        section = message["blocks"][1]["text"]
        assert section == {
            "type": "plain_text", "text": f"{HOSTILE} {MARKED_UP}", "emoji": False,
        }  # fmt: skip
        assert message["blocks"][1]["fields"][1]["text"] == "Domain: *db*"


def test_a_cut_never_splits_an_entity() -> None:
    """Cut first, then escape: every ``&`` in the mrkdwn Slack reads starts an entity."""
    for summary in ("&" * 2000, "x" + "<" * 1999, "a" * 1998 + "&>"):
        snapshot = {**handoff_body()["snapshot"], "problem_summary": summary}
        message = slack_message(event("handoff_created", snapshot=snapshot), public_url=PUBLIC_URL)
        jsonschema.validate(message, SCHEMA)
        mrkdwn = [message["text"]] + [
            obj["text"] for obj in text_objects(message) if obj["type"] == "mrkdwn"
        ]
        for text in mrkdwn:
            assert "&" not in re.sub("&(amp|lt|gt);", "", text), text[-40:]


def test_our_signature_is_the_reference_librarys() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    body = b'{"type":"handoff_created"}'
    headers = signed_headers(secret, message_id="d-1", timestamp=1_700_000_000, body=body)
    reference = standardwebhooks.Webhook(secret)
    expected = reference.sign("d-1", datetime.fromtimestamp(1_700_000_000, UTC), body.decode())
    assert headers["webhook-signature"] == expected


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("fd00::1", "private"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "link-local"),
        ("100.64.1.1", "non-public"),
        ("0.0.0.0", "unspecified"),
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_which_addresses_are_public(address: str, reason: str | None) -> None:
    found = non_public_reason(ipaddress.ip_address(address))
    assert found == reason or (reason is not None and found == "private")
