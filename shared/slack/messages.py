"""A handoff as the bot's Slack message (Block Kit), rendered from its current
state: the same handoff always gives the same message, so a message sent late
or twice is still right.

User text (the summary, the domain, people's names) is escaped with the
webhook format's helpers (``shared.webhooks.payloads``), so it never becomes a
mention, a link or markup. Every text is cut to Slack's limits.
"""

from datetime import datetime
from typing import Any

from shared.core.timeutil import isoformat
from shared.handoffs.models import HandoffPublic, HandoffStatus
from shared.webhooks.payloads import (
    BUTTON_MAX,
    FIELD_MAX,
    HEADER_MAX,
    SECTION_MAX,
    cut,
    escape,
    handoff_link,
    mrkdwn,
    plain_text,
)

CLAIM_ACTION = "claim"
RELEASE_ACTION = "release"
OPEN_ACTION = "open"
#: Slack's Block Kit limits, checked in tests: elements per actions block, blocks per message.
ACTIONS_MAX = 25
BLOCKS_MAX = 50


def status_text(handoff: HandoffPublic) -> str:
    """The current status in plain words (the message's top-level ``text``,
    which notifications and screen readers show)."""
    status = handoff.status
    if status == HandoffStatus.claimed:
        return f"Claimed by {handoff.claimed_by_name}"
    if status == HandoffStatus.resolved:
        return f"Resolved by {handoff.claimed_by_name or 'a senior'}"
    if status == HandoffStatus.cancelled:
        return "Cancelled"
    if handoff.assigned_to_name:
        return f"Waiting for a senior (assigned to {handoff.assigned_to_name})"
    return "Waiting for a senior"


def render(handoff: HandoffPublic, *, public_url: str) -> dict[str, Any]:
    """``{"text", "blocks"}`` for ``chat.postMessage`` / ``chat.update``."""
    summary = escape(handoff.snapshot.problem_summary)
    status = status_text(handoff)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain_text(_header(handoff), HEADER_MAX)},
        {"type": "section", "text": mrkdwn(f"*{summary}*", SECTION_MAX)},
        {"type": "section", "fields": [_field(name, value) for name, value in _fields(handoff)]},
        {"type": "context", "elements": [mrkdwn(escape(_since(handoff, status)), FIELD_MAX)]},
        {"type": "actions", "elements": _buttons(handoff, public_url)},
    ]
    text = f"{escape(status)}: {summary}"
    return {"text": cut(text, SECTION_MAX), "blocks": blocks}


def _header(handoff: HandoffPublic) -> str:
    if handoff.status in (HandoffStatus.resolved, HandoffStatus.cancelled):
        return f"Escalation {handoff.status.value}"
    return f"{handoff.priority.value.title()} escalation"


def _fields(handoff: HandoffPublic) -> list[tuple[str, str]]:
    target = handoff.escalation_target
    who = target.team_name or "all seniors"
    return [
        ("Status", status_text(handoff)),
        ("Priority", handoff.priority.value),
        ("Domain", handoff.snapshot.problem_domain),
        ("Level", f"{handoff.escalation_level + 1} · {who}"),
        ("Assignee", handoff.assigned_to_name or handoff.claimed_by_name or "nobody yet"),
        ("Raised by", handoff.created_by_name),
    ]


def _field(name: str, value: str) -> dict[str, Any]:
    return mrkdwn(f"*{name}*\n{escape(value)}", FIELD_MAX)


def _since(handoff: HandoffPublic, status: str) -> str:
    when: datetime | None = handoff.created_at
    if handoff.status == HandoffStatus.claimed:
        when = handoff.claimed_at
    elif handoff.status == HandoffStatus.resolved:
        when = handoff.resolved_at
    elif handoff.status == HandoffStatus.cancelled:
        when = handoff.updated_at
    else:
        status = "Raised"
    return f"{status} at {isoformat(when) if when else '?'}"


def _buttons(handoff: HandoffPublic, public_url: str) -> list[dict[str, Any]]:
    buttons = []
    if handoff.status == HandoffStatus.pending:
        buttons.append(_button("Claim", CLAIM_ACTION, value=handoff.id, style="primary"))
    elif handoff.status == HandoffStatus.claimed:
        buttons.append(_button("Release", RELEASE_ACTION, value=handoff.id))
    open_button = _button("Open", OPEN_ACTION, url=handoff_link(public_url, handoff.id))
    return [*buttons, open_button]


def _button(
    text: str, action_id: str, *, value: str = "", url: str = "", style: str = ""
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": plain_text(text, BUTTON_MAX),
        "action_id": action_id,
    }
    if value:
        button["value"] = value
    if url:
        button["url"] = url
    if style:
        button["style"] = style
    return button
