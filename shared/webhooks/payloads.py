"""What a delivery sends: the body for its subscription's format.

``standard``: the event exactly as the SSE stream carries it (``event_json``),
or for a test delivery an object of the same shape with ``type``
``webhook_test``, no handoff, and the ids in ``data``. ``slack``: a Slack
incoming-webhook message, ``text`` (the notification's fallback) plus
``blocks``: a header, the summary with priority, domain, status and the level
or assignee, a button and a link to the handoff in the console.

User text (a summary, a domain, a name) never reaches Slack as markup: in the
blocks it is ``plain_text`` (shown as typed, no links, mentions or formatting);
in the top-level ``text``, which Slack always reads as mrkdwn, it is cut first,
then escaped (``&``, ``<``, ``>``: no mention or link) and its formatting
characters replaced by look-alikes (no bold, italic, strike or code). Our own
mrkdwn (the console link) is ``verbatim``: Slack links nothing in it by itself.
"""

import json
import re
from typing import Any

from shared.core.timeutil import isoformat
from shared.webhooks.models import TEST_EVENT_TYPE

#: Slack's limits (Block Kit reference): header text, section text, a field, button text.
HEADER_MAX = 150
SECTION_MAX = 3_000
FIELD_MAX = 2_000
BUTTON_MAX = 75
#: The summary in the top-level ``text`` (before escaping): all of it (at most
#: 2,000 characters, ``Snapshot.problem_summary``).
TEXT_SUMMARY_MAX = 2_000

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
        {"type": "header", "text": plain_text(title, HEADER_MAX)},
        {
            "type": "section",
            "text": plain_text(summary, SECTION_MAX),
            "fields": [plain_text(f"{name}: {value}", FIELD_MAX) for name, value in fields],
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": plain_text("Open handoff", BUTTON_MAX),
                    "url": link,
                    "action_id": "open_handoff",
                }
            ],
        },
        {
            "type": "context",
            "elements": [mrkdwn(f"<{link}|Open in Escalation Mode> · {event['type']}", FIELD_MAX)],
        },
    ]
    said = f"{_as_text(title, HEADER_MAX)}: {_as_text(summary, TEXT_SUMMARY_MAX)}"
    text = f"{said} ({_as_text(str(handoff.get('priority', '')), HEADER_MAX)}) {link}"
    return {"text": text, "blocks": blocks}


def _slack_test_message(event: dict[str, Any], public_url: str) -> dict[str, Any]:
    text = "Test delivery from Escalation Mode: this webhook works."
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": mrkdwn(text, SECTION_MAX)},
            {"type": "context", "elements": [mrkdwn(f"<{public_url}/|{public_url}>", FIELD_MAX)]},
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


#: mrkdwn's formatting characters (bold, italic, strike, code) and the look-alikes
#: that stand in for them in user text.
_LOOK_ALIKES = str.maketrans({"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"})
_WHITESPACE = re.compile(r"\s+")


def _as_text(user_text: str, limit: int) -> str:
    """``user_text`` for mrkdwn (the top-level ``text``): on one line (no quote or
    code block), cut to ``limit`` characters *before* escaping (a cut never splits
    an entity), escaped, and its formatting characters replaced by look-alikes."""
    line = cut(_WHITESPACE.sub(" ", user_text).strip(), limit)
    return escape(line).translate(_LOOK_ALIKES)


def escape(text: str) -> str:
    """Slack mrkdwn's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_text(text: str, limit: int) -> dict[str, Any]:
    """Text Slack shows as it is: no markup, links, mentions or emoji codes."""
    return {"type": "plain_text", "text": cut(text, limit), "emoji": False}


def mrkdwn(text: str, limit: int) -> dict[str, Any]:
    """Our own markup (never user text); ``verbatim``: Slack adds no links or mentions."""
    return {"type": "mrkdwn", "text": cut(text, limit), "verbatim": True}


def cut(text: str, limit: int) -> str:
    text = text or " "
    return text if len(text) <= limit else text[: limit - 1] + "…"


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
