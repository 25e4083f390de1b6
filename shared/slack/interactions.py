"""What a click on the bot's message does.

Slack posts a ``block_actions`` payload, form-encoded and signed with the
app's signing secret (:func:`verified`). The org is the one that connected the
payload's workspace (``team.id``), never anything the user typed. The click
acts as the person the Slack user is linked to, through the same functions as
the API (``shared.handoffs``: the claim's Redis lock and conditional update, so
one winner across Slack and HTTP). The outcome reaches the user as an
ephemeral message through the payload's ``response_url``; the message itself
changes through the outbox like any other event's.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs

import httpx
from redis import Redis
from redis.exceptions import RedisError
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine
from sqlmodel import Session

from shared.auth.tokens import Principal
from shared.core.db import session_scope
from shared.core.errors import Conflict, DomainError, InvalidInput, NotFound
from shared.core.locks import ClaimLock
from shared.core.models import Role
from shared.core.settings import Settings
from shared.core.timeutil import as_utc
from shared.handoffs.claim_flights import ClaimFlights
from shared.handoffs.claims import claim_handoff, release_handoff
from shared.handoffs.models import HandoffStatus
from shared.slack import service
from shared.slack.messages import CLAIM_ACTION, RELEASE_ACTION

log = logging.getLogger(__name__)

RESPONSE_TIMEOUT_SECONDS = 5.0
LINK_PATH = "/#/slack/link?code="


@dataclass(frozen=True)
class Click:
    """One button of a ``block_actions`` payload."""

    workspace_id: str
    slack_user_id: str
    action_id: str
    value: str
    response_url: str


def verified(
    *, signing_secret: str, body: bytes, timestamp: str | None, signature: str | None
) -> bool:
    """Slack's v0 signature over ``v0:{timestamp}:{body}`` matches, and the
    timestamp is within 5 minutes of now (``slack_sdk``'s ``SignatureVerifier``)."""
    if not timestamp or not signature or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return SignatureVerifier(signing_secret).is_valid(body, timestamp, signature)


def parse_click(body: bytes) -> Click | None:
    """The first action of the form's ``payload``; None for other kinds of
    payload. Raises ``InvalidInput`` ``invalid_slack_payload``."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False)
        payload = json.loads(form["payload"][0])
        if payload.get("type") != "block_actions":
            return None
        action = payload["actions"][0]
        return Click(
            workspace_id=str(payload["team"]["id"]),
            slack_user_id=str(payload["user"]["id"]),
            action_id=str(action["action_id"]),
            value=str(action.get("value") or ""),
            response_url=str(payload["response_url"]),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(
            "Not a Slack block_actions payload.", code="invalid_slack_payload"
        ) from exc


def handle_click(
    *,
    engine: Engine,
    redis: Redis,
    settings: Settings,
    click: Click,
    flights: ClaimFlights | None = None,
) -> str | None:
    """Does what the click asks; returns the text to tell the user (None: nothing)."""
    if click.action_id not in (CLAIM_ACTION, RELEASE_ACTION):
        return None  # "Open" is a link: Slack tells us of the click, nothing to do
    with session_scope(engine) as session:
        connection = service.find_connection(session=session, workspace_id=click.workspace_id)
        if connection is None:
            return "This Slack workspace is not connected to Escalation Mode."
        link = service.find_link(
            session=session, org_id=connection.org_id, slack_user_id=click.slack_user_id
        )
        if link is None:
            return _link_invitation(redis, settings, connection.org_id, click.slack_user_id)
        principal = service.principal_for(link)
        if principal.role not in (Role.senior, Role.admin):
            return f"Only seniors can claim escalations; you are linked as {principal.name}."
        try:
            if click.action_id == CLAIM_ACTION:
                return _claim(session, redis, settings, principal, click.value, flights)
            release_handoff(session=session, principal=principal, handoff_id=click.value)
            return "You released this escalation; it is waiting for a senior again."
        except DomainError as exc:
            return _explain(exc)


def _claim(
    session: Session,
    redis: Redis,
    settings: Settings,
    principal: Principal,
    handoff_id: str,
    flights: ClaimFlights | None,
) -> str:
    def lock(handoff_id: str) -> ClaimLock | None:
        if not settings.claim_lock_enabled:
            return None
        return ClaimLock(redis, handoff_id, ttl_seconds=settings.claim_lock_ttl_seconds)

    try:
        claim_handoff(
            session=session,
            principal=principal,
            handoff_id=handoff_id,
            claim_lock=lock,
            flights=flights,
        )
    except Conflict as exc:
        if exc.code != "handoff_already_claimed":
            raise
        claimed_at = exc.extra.get("claimed_at")
        when = as_utc(datetime.fromisoformat(claimed_at)) if claimed_at else None
        seconds = service.seconds_since(when)
        return f"Already claimed by {exc.extra.get('claimed_by_name')} {seconds} seconds ago."
    return "You claimed this escalation."


def _explain(exc: DomainError) -> str:
    if isinstance(exc, NotFound):
        return "This escalation no longer exists."
    status = exc.extra.get("status")
    if exc.code == "invalid_state" and status in (HandoffStatus.resolved, HandoffStatus.cancelled):
        return f"This escalation is {status} already."
    return exc.detail


def _link_invitation(redis: Redis, settings: Settings, org_id: str, slack_user_id: str) -> str:
    try:
        code = service.new_link_code(redis=redis, org_id=org_id, slack_user_id=slack_user_id)
    except RedisError:
        return "Your Slack account is not linked yet, and linking is unavailable; retry shortly."
    link = f"{settings.public_url}{LINK_PATH}{code}"
    return (
        "Your Slack account is not linked to Escalation Mode yet. Open this link, signed in,"
        f" to link it (it works once, for 15 minutes): <{link}|link my Slack account>"
    )


def respond(response_url: str, text: str) -> bool:
    """Posts ``text`` as an ephemeral message to the click's ``response_url``;
    whether Slack took it. Never raises; never logs the URL (it is a credential
    for 30 minutes)."""
    body = {"response_type": "ephemeral", "replace_original": False, "text": text}
    try:
        answer = httpx.post(response_url, json=body, timeout=RESPONSE_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        log.warning("slack response_url unreachable: %s", type(exc).__name__)
        return False
    if answer.status_code >= 300:
        log.warning("slack response_url answered %d", answer.status_code)
    return answer.status_code < 300
