"""One job: bring one Slack message to its handoff's current state.

Run by ``services.worker.slack.sync_slack_message`` on the ``notifications``
queue. Under the message's Redis lock it reads the message row, the handoff
and the org's connection, renders the handoff as it is now
(``shared.slack.messages``), posts it (``chat.postMessage``, first time) or
updates it in place (``chat.update``), and records the version it rendered.
An event committed meanwhile leaves the row due, so another job sends the
newer state; a late job never sends an older one.

Slack's answers: 429 makes the row due after its ``Retry-After``; a network
error or a 5xx after a back-off (tries never end: the message is only ever
delayed); any other refusal (``invalid_auth``, ``channel_not_found``, …) is
recorded in ``last_error`` and the row waits for the next event. The bot
token reaches Slack only; the Web API client logs through a logger that keeps
below WARNING quiet (its DEBUG lines carry whole requests and answers, handoff
text included; it redacts the ``Authorization`` header itself).
"""

import logging
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.exceptions import LockError, RedisError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import Engine, case, update
from sqlmodel import Session, col

from shared.core import keys
from shared.core.db import load_in_org, session_scope
from shared.core.settings import Settings
from shared.core.timeutil import utcnow
from shared.handoffs.models import Handoff
from shared.handoffs.views import handoff_public
from shared.slack.messages import render
from shared.slack.models import SlackConnection, SlackMessage
from shared.slack.sync import JOB_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

#: The Web API client's own logger: its DEBUG lines hold whole requests and answers.
_web_api_log = logging.getLogger("shared.slack.web_api")
_web_api_log.setLevel(logging.WARNING)

WEB_API_TIMEOUT_SECONDS = 10
#: Back-off after the n-th failed try in a row (the last value repeats).
BACKOFF_SECONDS = (1, 2, 5, 15, 30, 60, 120, 300)
MAX_RETRY_AFTER_SECONDS = 3600
#: Another job holds the message (one judged lost that still runs): try after this.
BUSY_RETRY_SECONDS = 2.0
#: Slack errors worth trying again (others wait for the next event).
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable"}


def sync_message(*, engine: Engine, redis: Redis, settings: Settings, message_id: str) -> str:
    """Returns the outcome: ``sent``, ``retry``, ``refused``, ``gone`` (no row,
    handoff or connection any more), ``current`` (nothing to send) or
    ``busy`` (another job holds the message)."""
    lock = redis.lock(keys.slack_message_lock(message_id), timeout=JOB_TIMEOUT_SECONDS)
    if not lock.acquire(blocking=False):
        _retry_later(engine, message_id, delay=BUSY_RETRY_SECONDS)
        return "busy"
    try:
        return _sync_locked(engine, settings, message_id)
    finally:
        try:
            lock.release()
        except (LockError, RedisError) as exc:  # expired or Redis gone: the TTL cleans up
            log.warning("slack message %s: lock release failed: %s", message_id, exc)


def _sync_locked(engine: Engine, settings: Settings, message_id: str) -> str:
    with session_scope(engine) as session:
        loaded = _load(session, message_id)
        if isinstance(loaded, str):
            return loaded
        message, token, payload = loaded
        payload = render(payload, public_url=settings.public_url)
    # No transaction stays open while Slack is called.
    client = WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=WEB_API_TIMEOUT_SECONDS,
        logger=_web_api_log,
    )
    try:
        ts = _send(client, message, payload)
    except SlackApiError as exc:
        return _after_refusal(engine, message, exc)
    except (SlackClientError, OSError) as exc:
        return _retry(engine, message, delay=_backoff(message), error=type(exc).__name__)
    except Exception:  # a bug must cost a back-off, not loop the message through RQ
        log.exception("slack message %s: unexpected error while sending", message.id)
        return _retry(engine, message, delay=_backoff(message), error="internal error")
    with session_scope(engine) as session:
        _finish(session, message, ts)
    return "sent"


def _load(session: Session, message_id: str) -> tuple[SlackMessage, str, Any] | str:
    message = session.get(SlackMessage, message_id)
    if message is None:
        return "gone"
    if message.due_at is None:
        _unmark(session, message)
        return "current"
    connection = session.get(SlackConnection, message.org_id)
    handoff = load_in_org(session, Handoff, org_id=message.org_id, row_id=message.handoff_id)
    if connection is None or handoff is None:
        session.delete(message)
        session.commit()
        return "gone"
    return message, connection.bot_token, handoff_public(handoff)


def _send(client: WebClient, message: SlackMessage, payload: dict[str, Any]) -> str:
    if message.ts is None:
        answer = client.chat_postMessage(channel=message.channel, **payload)
        return str(answer["ts"])
    client.chat_update(channel=message.channel, ts=message.ts, **payload)
    return message.ts


def _finish(session: Session, message: SlackMessage, ts: str) -> None:
    """Records that Slack shows ``message.version``; still due if an event
    bumped the version meanwhile."""
    now = utcnow()
    session.execute(
        update(SlackMessage)
        .where(col(SlackMessage.id) == message.id)
        .values(
            ts=ts,
            synced_version=message.version,
            attempts=0,
            last_error=None,
            enqueued_at=None,
            due_at=case((col(SlackMessage.version) == message.version, None), else_=now),
            updated_at=now,
        )
    )
    session.commit()


def _after_refusal(engine: Engine, message: SlackMessage, exc: SlackApiError) -> str:
    status = exc.response.status_code
    error = str(exc.response.get("error") or f"HTTP {status}")
    if status == 429:
        delay = _retry_after(exc.response.headers)
        return _retry(engine, message, delay=delay, error="ratelimited")
    if status >= 500 or error in TRANSIENT_ERRORS:
        return _retry(engine, message, delay=_backoff(message), error=error)
    log.warning("slack message %s refused by Slack: %s", message.id, error)
    with session_scope(engine) as session:
        session.execute(
            update(SlackMessage)
            .where(col(SlackMessage.id) == message.id)
            .values(
                last_error=error[:512],
                attempts=message.attempts + 1,
                enqueued_at=None,
                due_at=case((col(SlackMessage.version) == message.version, None), else_=utcnow()),
                updated_at=utcnow(),
            )
        )
        session.commit()
    return "refused"


def _retry(engine: Engine, message: SlackMessage, *, delay: float, error: str) -> str:
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(
            update(SlackMessage)
            .where(col(SlackMessage.id) == message.id)
            .values(
                attempts=message.attempts + 1,
                last_error=error[:512],
                enqueued_at=None,
                due_at=now + timedelta(seconds=delay),
                updated_at=now,
            )
        )
        session.commit()
    log.info("slack message %s: %s; next try in %.1f s", message.id, error, delay)
    return "retry"


def _retry_later(engine: Engine, message_id: str, *, delay: float) -> None:
    """Unmarks the row, due again after ``delay`` (it keeps a later due time)."""
    later = utcnow() + timedelta(seconds=delay)
    with session_scope(engine) as session:
        session.execute(
            update(SlackMessage)
            .where(col(SlackMessage.id) == message_id)
            .values(
                enqueued_at=None,
                due_at=case(
                    (col(SlackMessage.due_at) > later, col(SlackMessage.due_at)), else_=later
                ),
            )
        )
        session.commit()


def _unmark(session: Session, message: SlackMessage) -> None:
    session.execute(
        update(SlackMessage).where(col(SlackMessage.id) == message.id).values(enqueued_at=None)
    )
    session.commit()


def _backoff(message: SlackMessage) -> float:
    return float(BACKOFF_SECONDS[min(message.attempts, len(BACKOFF_SECONDS) - 1)])


def _retry_after(headers: Any) -> float:
    """Slack's ``Retry-After`` (seconds), bounded; 1 when missing or unreadable."""
    value = None
    for name, text in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            value = text[0] if isinstance(text, list) else text
    try:
        return float(min(max(int(str(value)), 1), MAX_RETRY_AFTER_SECONDS))
    except ValueError:
        return 1.0
