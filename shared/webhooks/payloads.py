"""What a delivery sends: the body for its subscription's format.

``standard``: the event exactly as the SSE stream carries it (``event_json``),
or for a test delivery an object of the same shape with ``type``
``webhook_test``, no handoff, and the ids in ``data``. ``slack``: a Slack
incoming-webhook message, ``text`` (the notification's fallback) plus
``blocks``: a header, the summary with priority, domain, status and the level
or assignee, a button and a link to the handoff in the console.
"""

import json
from typing import Any

from shared.timeutil import isoformat
from shared.webhooks.models import TEST_EVENT_TYPE

#: Slack's limits (Block Kit reference): header text, section text, a field, button text.
HEADER_MAX = 150
SECTION_MAX = 3_000
FIELD_MAX = 2_000
BUTTON_MAX = 75

TITLES = {
    "handoff_created": "New escalation",
    "handoff_assessment_ready": "AI assessment ready",
    "handoff_assessment_failed": "AI assessment failed",
    "handoff_claimed": "Escalation claimed",
    "handoff_released": "Escalation released",
    "handoff_resolved": "Escalation resolved",
    "handoff_cancelled": "Escalation cancelled",
    "handoff_sla_breached": "Claim SLA breached",
    "handoff_escalated": "Escalated to the next level",
    "handoff_assigned": "Escalation assigned",
    "handoff_reassigned": "Escalation reassigned",
}


def handoff_link(public_url: str, handoff_id: str) -> str:
    """The handoff in the console (its hash route, ``#/handoff/{id}``)."""
    return f"{public_url}/#/handoff/{handoff_id}"


def test_event(*, org_id: str, webhook_id: str, delivery_id: str, at: Any) -> dict[str, Any]:
    return {
        "id": None,
        "type": TEST_EVENT_TYPE,
        "handoff_id": None,
        "org_id": org_id,
        "at": isoformat(at),
        "actor_id": None,
        "actor_name": None,
        "request_id": None,
        "data": {"webhook_id": webhook_id, "delivery_id": delivery_id},
        "handoff": None,
    }


def slack_message(event: dict[str, Any], *, public_url: str) -> dict[str, Any]:
    """A Slack message for ``event`` (a dict shaped as on the SSE stream)."""
    handoff = event.get("handoff")
    if handoff is None:
        return _slack_test_message(event, public_url)
    title = _title(event)
    snapshot = handoff.get("snapshot") or {}
    summary = snapshot.get("problem_summary", "")
    link = handoff_link(public_url, handoff["id"])
    fields = [
        ("Priority", handoff.get("priority", "")),
        ("Domain", snapshot.get("problem_domain", "")),
        ("Status", handoff.get("status", "")),
        _level_or_assignee(handoff),
    ]
    blocks = [
        {"type": "header", "text": _plain(title, HEADER_MAX)},
        {
            "type": "section",
            "text": _mrkdwn(f"*{_escape(summary)}*", SECTION_MAX),
            "fields": [
                _mrkdwn(f"*{name}*\n{_escape(str(value))}", FIELD_MAX) for name, value in fields
            ],
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": _plain("Open handoff", BUTTON_MAX),
                    "url": link,
                    "action_id": "open_handoff",
                }
            ],
        },
        {
            "type": "context",
            "elements": [_mrkdwn(f"<{link}|Open in Escalation Mode> · {event['type']}", FIELD_MAX)],
        },
    ]
    text = f"{title}: {summary} ({handoff.get('priority', '')}) {link}"
    return {"text": text[:SECTION_MAX], "blocks": blocks}


def _slack_test_message(event: dict[str, Any], public_url: str) -> dict[str, Any]:
    text = "Test delivery from Escalation Mode: this webhook works."
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": _mrkdwn(text, SECTION_MAX)},
            {"type": "context", "elements": [_mrkdwn(f"<{public_url}/|{public_url}>", FIELD_MAX)]},
        ],
    }


def _title(event: dict[str, Any]) -> str:
    title = TITLES.get(event["type"], event["type"])
    data = event.get("data") or {}
    escalation = data.get("escalation")
    if escalation:
        return f"Escalated to level {escalation['level'] + 1}"
    handoff = event["handoff"]
    assignee = (data.get("assignment") or {}).get("assigned_to_name")
    if event["type"] == "handoff_assigned" and (assignee or handoff.get("assigned_to_name")):
        return f"Assigned to {assignee or handoff['assigned_to_name']}"
    new_claimer = (data.get("reassignment") or {}).get("to_name")
    if event["type"] == "handoff_reassigned" and new_claimer:
        return f"Reassigned to {new_claimer}"
    if event["type"] == "handoff_claimed" and handoff.get("claimed_by_name"):
        return f"Claimed by {handoff['claimed_by_name']}"
    return title


def _level_or_assignee(handoff: dict[str, Any]) -> tuple[str, str]:
    if handoff.get("assigned_to_name"):
        return "Assigned to", handoff["assigned_to_name"]
    target = handoff.get("escalation_target") or {}
    who = target.get("team_name") or "all seniors"
    return "Level", f"{handoff.get('escalation_level', 0) + 1} · {who}"


def _field(name: str, value: object) -> dict[str, Any]:
    return _mrkdwn(f"*{name}*\n{_escape(str(value))}", FIELD_MAX)


def _escape(text: str) -> str:
    """Slack mrkdwn's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(text, limit), "emoji": True}


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(text, limit)}


def _cut(text: str, limit: int) -> str:
    text = text or " "
    return text if len(text) <= limit else text[: limit - 1] + "…"


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
