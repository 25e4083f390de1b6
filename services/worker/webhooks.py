"""The RQ job: ``services.worker.webhooks.deliver_webhook(delivery_id, attempt)``.

In a worker serving ``notifications`` the job hands the try to the process's
pool (``services.worker.delivery_pool``) and returns at once, so many tries
wait on their receivers together; anywhere else (a forked work horse, tests)
it makes the try itself.

One try of one delivery (:func:`try_delivery`): load it, build its body for the subscription's
format, sign it, send it (``shared.webhooks.sender``: the address checked after
resolution, one deadline, no redirects, a bounded read) and record the outcome
(``shared.webhooks.tries.finish_try``), which schedules the next try or
ends the delivery. The job itself never raises for a receiver's failure: the
retry schedule lives in the database, not in RQ.
"""

import contextlib
import functools
import json
import logging
import time

from redis.exceptions import RedisError
from sqlmodel import Session, select

from services.worker.context import get_context
from services.worker.delivery_pool import PoolFull
from shared.core import keys
from shared.core.db import session_scope
from shared.core.metrics import WEBHOOK_DELIVERIES, WEBHOOK_DELIVERY_LATENCY, WEBHOOK_TRY_DURATION
from shared.core.settings import Settings
from shared.core.timeutil import as_utc, utcnow
from shared.events.models import Event
from shared.events.record import event_json
from shared.webhooks import payloads, tries
from shared.webhooks.circuit import Breaker
from shared.webhooks.dispatch import STARTED_GRACE_SECONDS
from shared.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookFormat
from shared.webhooks.sender import TryResult, send
from shared.webhooks.signing import signed_headers

log = logging.getLogger(__name__)


def deliver_webhook(delivery_id: str, attempt: int) -> str:
    """Returns ``pooled`` when the try was handed to this worker's pool,
    ``deferred`` when the pool stayed full for a try's deadline (the delivery is
    due again at once, for the dispatcher), else the try's outcome (see
    :func:`try_delivery`). Raises ``RedisError`` if the lease cannot be taken
    (the reconciler makes the delivery due again)."""
    context = get_context()
    pool = context.delivery_pool
    if pool is None:
        return try_delivery(delivery_id, attempt)
    settings = context.settings
    lease = keys.delivery_try_lease(delivery_id, attempt)
    lease_ms = int((settings.webhook_timeout_seconds + STARTED_GRACE_SECONDS) * 1000)
    context.redis.set(lease, "1", px=lease_ms)
    try:
        pool.submit(
            functools.partial(_pooled_try, delivery_id, attempt, lease),
            wait=settings.webhook_timeout_seconds,
        )
    except PoolFull:
        context.redis.delete(lease)
        with session_scope(context.engine) as session:
            tries.release(session, delivery_ids=[delivery_id])
        return _count("deferred", "none")
    return "pooled"


def _pooled_try(delivery_id: str, attempt: int, lease: str) -> None:
    try:
        try_delivery(delivery_id, attempt)
    finally:
        with contextlib.suppress(RedisError):  # it expires on its own
            get_context().redis.delete(lease)


def try_delivery(delivery_id: str, attempt: int) -> str:
    """One try. Returns its outcome: ``delivered``, ``retry``, ``failed``,
    ``disabled``, or ``skipped`` (gone, no longer pending, or this try was
    made already)."""
    context = get_context()
    with session_scope(context.engine) as session:
        loaded = _load(session, delivery_id, attempt)
        if loaded is None:
            return _count("skipped", "none")
        delivery, webhook = loaded
        if not webhook.enabled:
            tries.fail_without_try(session, delivery=delivery, reason="The webhook is disabled.")
            return _count("failed", webhook.format)
        body = _body(session, delivery, webhook, context.settings)
        secret, url, format_ = webhook.secret, webhook.url, webhook.format
    # The session is closed (its objects detached as loaded): no transaction
    # stays open while the receiver is called.
    result = _send(url, secret, delivery, body, context.settings)
    with session_scope(context.engine) as session:
        outcome = tries.finish_try(
            session,
            delivery=delivery,
            status_code=result.status_code,
            error=result.error,
            intervals=context.settings.webhook_retry_intervals_seconds,
            breaker=Breaker.from_settings(context.settings),
        )
    _observe(outcome, format_, delivery, result)
    if outcome != "delivered":
        log.info(
            "webhook delivery %s (webhook %s) try %d: %s (%s)",
            delivery.id, delivery.webhook_id, attempt, outcome, result.error,
        )  # fmt: skip
    return outcome


def _load(
    session: Session, delivery_id: str, attempt: int
) -> tuple[WebhookDelivery, Webhook] | None:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status != DeliveryStatus.pending.value:
        return None
    if delivery.attempts + 1 != attempt:
        return None  # a duplicate of a try that was recorded already
    webhook = session.exec(
        select(Webhook).where(Webhook.id == delivery.webhook_id, Webhook.org_id == delivery.org_id)
    ).first()
    return None if webhook is None else (delivery, webhook)


def _body(
    session: Session, delivery: WebhookDelivery, webhook: Webhook, settings: Settings
) -> bytes:
    """``standard``: the event's JSON exactly as streamed; ``slack``: a message."""
    event_text = _event_text(session, delivery)
    if webhook.format == WebhookFormat.slack.value:
        message = payloads.slack_message(json.loads(event_text), public_url=settings.public_url)
        return payloads.encode(message)
    return event_text.encode()


def _event_text(session: Session, delivery: WebhookDelivery) -> str:
    if delivery.event_seq is None:
        test = payloads.test_event(
            org_id=delivery.org_id,
            webhook_id=delivery.webhook_id,
            delivery_id=delivery.id,
            at=delivery.created_at,
        )
        return payloads.encode(test).decode()
    stored = session.exec(
        select(Event).where(Event.org_id == delivery.org_id, Event.seq == delivery.event_seq)
    ).one()
    return event_json(stored)


def _send(
    url: str, secret: str, delivery: WebhookDelivery, body: bytes, settings: Settings
) -> TryResult:
    headers = signed_headers(secret, message_id=delivery.id, timestamp=int(time.time()), body=body)
    try:
        return send(
            url,
            body=body,
            headers=headers,
            allow_private=settings.webhook_allow_private_networks,
            timeout=settings.webhook_timeout_seconds,
        )
    except Exception:  # a bug must cost this try, not loop the delivery through the reconciler
        log.exception("webhook delivery %s: unexpected error while sending", delivery.id)
        return TryResult(None, "internal error while sending", 0.0)


def _observe(outcome: str, format_: str, delivery: WebhookDelivery, result: TryResult) -> None:
    _count(outcome, format_)
    WEBHOOK_TRY_DURATION.labels(format_).observe(result.seconds)
    if outcome == "delivered":
        latency = (utcnow() - as_utc(delivery.created_at)).total_seconds()
        WEBHOOK_DELIVERY_LATENCY.labels(format_).observe(latency)


def _count(outcome: str, format_: str) -> str:
    WEBHOOK_DELIVERIES.labels(outcome, format_).inc()
    return outcome
