"""Webhook subscriptions of an org: create, read, change, delete, rotate the
secret. Functions take keyword arguments only, commit their own transaction
and raise ``shared.core.errors`` exceptions; another org's subscription is
``NotFound`` (``webhook_not_found``), never a hint that it exists."""

import uuid
from collections import defaultdict

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from shared import audit
from shared.audit import Actor
from shared.core.db import load_in_org
from shared.core.errors import NotFound, QuotaExceeded
from shared.core.timeutil import utcnow
from shared.webhooks import circuit
from shared.webhooks.circuit import receiver_of
from shared.webhooks.models import (
    SUBSCRIBABLE,
    CircuitState,
    Webhook,
    WebhookCreate,
    WebhookEventType,
    WebhookList,
    WebhookPatch,
    WebhookPublic,
    WebhookWithSecret,
)
from shared.webhooks.safety import check_subscription_url
from shared.webhooks.signing import new_secret


def create_webhook(
    *,
    session: Session,
    actor: Actor,
    org_id: str,
    body: WebhookCreate,
    allow_private: bool,
    max_webhooks: int,
) -> WebhookWithSecret:
    """Raises ``InvalidInput``: ``invalid_webhook_url``, ``webhook_url_forbidden``
    (a non-public address, unless ``allow_private``), ``webhook_url_unresolvable``;
    ``QuotaExceeded`` (``quota_exceeded``, 409) when the org has ``max_webhooks``
    already. Two creates at the same moment may both pass the count (one over)."""
    _refuse_over_quota(session, org_id=org_id, max_webhooks=max_webhooks)
    check_subscription_url(body.url, allow_private=allow_private)
    now = utcnow()
    webhook = Webhook(
        id=str(uuid.uuid4()),
        org_id=org_id,
        url=body.url,
        format=body.format.value,
        description=body.description,
        enabled=True,
        secret=new_secret(),
        receiver=receiver_of(body.url),
        created_at=now,
        updated_at=now,
    )
    events = list(body.events or SUBSCRIBABLE)
    session.add(webhook)
    session.flush()  # the subscription's row before the rows that reference it
    _write_events(session, webhook, events)
    public = _public(webhook, events)
    audit.record(
        session,
        org_id=org_id,
        actor=actor,
        kind="webhook.created",
        target_id=webhook.id,
        after=public,
    )
    session.commit()
    return WebhookWithSecret(**public.model_dump(), secret=webhook.secret)


def _refuse_over_quota(session: Session, *, org_id: str, max_webhooks: int) -> None:
    count = session.scalar(select(func.count()).where(col(Webhook.org_id) == org_id)) or 0
    if count >= max_webhooks:
        raise QuotaExceeded(
            f"The organization has {count} webhooks; the limit is {max_webhooks}."
            " Delete one first.",
            quota="webhooks",
            limit=max_webhooks,
        )


def list_webhooks(*, session: Session, org_id: str) -> WebhookList:
    """The org's subscriptions, oldest first."""
    webhooks = session.exec(
        select(Webhook)
        .where(Webhook.org_id == org_id)
        .order_by(col(Webhook.created_at), col(Webhook.id))
    ).all()
    events: defaultdict[str, list[str]] = defaultdict(list)
    for row in session.exec(
        select(WebhookEventType)
        .where(WebhookEventType.org_id == org_id)
        .order_by(col(WebhookEventType.position))
    ):
        events[row.webhook_id].append(row.event_type)
    return WebhookList(items=[_public(webhook, events[webhook.id]) for webhook in webhooks])


def load_webhook(*, session: Session, org_id: str, webhook_id: str) -> Webhook:
    """The org's subscription, or ``NotFound`` (``webhook_not_found``)."""
    webhook = load_in_org(session, Webhook, org_id=org_id, row_id=webhook_id)
    if webhook is None:
        raise NotFound(f"Webhook {webhook_id} not found.", code="webhook_not_found")
    return webhook


def describe(*, session: Session, webhook: Webhook) -> WebhookPublic:
    return _public(webhook, _events(session, webhook))


def update_webhook(
    *, session: Session, actor: Actor, webhook: Webhook, body: WebhookPatch, allow_private: bool
) -> WebhookPublic:
    """Changes the fields ``body`` sets, with its audit row; a new URL is checked as
    on create. Enabling clears ``disabled_reason``."""
    before = describe(session=session, webhook=webhook)
    fields = body.model_dump(exclude_unset=True)
    if fields.get("url") is not None:
        check_subscription_url(fields["url"], allow_private=allow_private)
        webhook.url = fields["url"]
        webhook.receiver = receiver_of(webhook.url)
    if fields.get("format") is not None:
        webhook.format = fields["format"].value
    if fields.get("description") is not None:
        webhook.description = fields["description"]
    if fields.get("enabled") is not None:
        webhook.enabled = fields["enabled"]
        if webhook.enabled:
            webhook.disabled_reason = None
    if fields.get("events") is not None:
        session.execute(
            delete(WebhookEventType).where(col(WebhookEventType.webhook_id) == webhook.id)
        )
        _write_events(session, webhook, fields["events"])
    webhook.updated_at = utcnow()
    session.add(webhook)
    session.flush()
    after = describe(session=session, webhook=webhook)
    audit.record(
        session,
        org_id=webhook.org_id,
        actor=actor,
        kind="webhook.updated",
        target_id=webhook.id,
        before=before,
        after=after,
    )
    session.commit()
    return after


def rotate_secret(*, session: Session, actor: Actor, webhook: Webhook) -> WebhookWithSecret:
    """A new secret signs every try from now on, retries of older deliveries too.
    The audit row says it was rotated, never what it was or is."""
    webhook.secret = new_secret()
    webhook.updated_at = utcnow()
    session.add(webhook)
    audit.record(
        session,
        org_id=webhook.org_id,
        actor=actor,
        kind="webhook.secret_rotated",
        target_id=webhook.id,
    )
    session.commit()
    public = describe(session=session, webhook=webhook)
    return WebhookWithSecret(**public.model_dump(), secret=webhook.secret)


def delete_webhook(*, session: Session, actor: Actor, webhook: Webhook) -> None:
    """Deletes the subscription with its event types and deliveries (cascade), with
    its audit row; a job still queued for one of them finds nothing and does nothing."""
    before = describe(session=session, webhook=webhook)
    audit.record(
        session,
        org_id=webhook.org_id,
        actor=actor,
        kind="webhook.deleted",
        target_id=webhook.id,
        before=before,
    )
    session.execute(
        delete(Webhook).where(col(Webhook.id) == webhook.id, col(Webhook.org_id) == webhook.org_id)
    )
    session.commit()


def _write_events(session: Session, webhook: Webhook, events: list[str]) -> None:
    session.add_all(
        WebhookEventType(
            webhook_id=webhook.id, org_id=webhook.org_id, event_type=event_type, position=index
        )
        for index, event_type in enumerate(events)
    )
    session.flush()


def _events(session: Session, webhook: Webhook) -> list[str]:
    return list(
        session.exec(
            select(WebhookEventType.event_type)
            .where(WebhookEventType.webhook_id == webhook.id)
            .order_by(col(WebhookEventType.position))
        )
    )


def _public(webhook: Webhook, events: list[str]) -> WebhookPublic:
    circuit_state = circuit.state(webhook, now=utcnow())
    return WebhookPublic(
        id=webhook.id,
        url=webhook.url,
        events=events,
        format=webhook.format,  # type: ignore[arg-type]
        description=webhook.description,
        enabled=webhook.enabled,
        disabled_reason=webhook.disabled_reason,
        circuit=circuit_state,
        consecutive_failures=webhook.consecutive_failures,
        paused_until=webhook.paused_until if circuit_state is CircuitState.open else None,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
    )
