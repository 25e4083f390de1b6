"""Deliveries: made from the outbox, read as a log, and moved through their tries.

A delivery is created in the same transaction as its event (``record_event``
calls :func:`create_deliveries`): one ``INSERT … SELECT`` writes a row for
every enabled subscription of the org that wants the event's type, so a
committed event always has its deliveries and a rolled-back one has none,
whatever happens to Redis or a worker afterwards. From there the row is the
truth: ``shared.webhooks.dispatcher`` enqueues due rows, a worker makes one
try (:func:`finish_try` records it) and the reconciler finds rows whose job
was lost.
"""

import base64
import binascii
import functools
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from shared.core.db import is_uuid, rows_changed
from shared.core.errors import Conflict, InvalidInput, NotFound
from shared.core.timeutil import as_utc, isoformat, utcnow
from shared.webhooks import circuit
from shared.webhooks.models import (
    TEST_EVENT_TYPE,
    CircuitState,
    DeliveryPage,
    DeliveryPublic,
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    WebhookEventType,
)

PENDING = DeliveryStatus.pending.value
#: ``session.info`` flag: the transaction wrote a due delivery, so the commit wakes
#: this process's dispatcher (``shared.outbox``); a commit without one does not
#: (most events have no subscriber, and the dispatcher's poll catches retries).
DELIVERIES_WRITTEN = "outbox_deliveries_written"
MAX_ERROR_LENGTH = 512


# --- creation -----------------------------------------------------------------------


def create_deliveries(
    session: Session, *, org_id: str, event_seq: int, event_type: str, at: datetime
) -> None:
    """In the caller's transaction: one pending delivery, due now, for each
    enabled subscription of ``org_id`` to ``event_type``."""
    statement = _create_statement(session.connection().dialect.name)
    parameters = {"org_id": org_id, "event_seq": event_seq, "event_type": event_type, "at": at}
    # preserve_rowcount: without it PostgreSQL's driver reports -1 (true) for an INSERT … SELECT.
    written = session.execute(statement, parameters, execution_options=PRESERVE_ROWCOUNT)
    if rows_changed(written):
        session.info[DELIVERIES_WRITTEN] = True


PRESERVE_ROWCOUNT = {"preserve_rowcount": True}


@functools.cache
def _create_statement(dialect_name: str) -> Any:
    """``create_deliveries``' statement, built once per dialect (building costs
    more than running it)."""
    deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
    return delivery_insert(
        org_id=bindparam("org_id", type_=deliveries.c.org_id.type),
        event_seq=bindparam("event_seq", type_=deliveries.c.event_seq.type),
        event_type=bindparam("event_type", type_=deliveries.c.event_type.type),
        at=bindparam("at", type_=deliveries.c.created_at.type),
        dialect_name=dialect_name,
    )


def delivery_insert(
    *,
    org_id: Any,
    event_seq: Any,
    event_type: Any,
    at: Any,
    dialect_name: str = "postgresql",
    source: Any = None,
) -> Any:
    """``INSERT … SELECT``: a pending delivery, due ``at``, for each enabled
    subscription of ``org_id`` to ``event_type`` (SQL expressions: bound
    parameters, or columns of ``source``, e.g. the outbox's event CTE)."""
    deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
    webhooks = Webhook.__table__  # type: ignore[attr-defined]
    types = WebhookEventType.__table__  # type: ignore[attr-defined]
    subscriptions = types.join(
        webhooks, and_(webhooks.c.id == types.c.webhook_id, webhooks.c.org_id == types.c.org_id)
    )
    rows = (
        select(
            _new_id(dialect_name),
            webhooks.c.org_id,
            webhooks.c.id,
            event_seq,
            event_type,
            literal_column(f"'{PENDING}'"),  # constants inline: a shorter statement
            literal_column("0"),
            literal_column("0"),
            at,
            at,
            at,
        )
        .select_from(subscriptions if source is None else source.join(subscriptions, true()))
        .where(
            types.c.org_id == org_id,
            types.c.event_type == event_type,
            webhooks.c.enabled.is_(True),
        )
    )
    columns = [
        "id",
        "org_id",
        "webhook_id",
        "event_seq",
        "event_type",
        "status",
        "attempts",
        "round_attempts",
        "next_attempt_at",
        "created_at",
        "updated_at",
    ]
    return insert(deliveries).from_select(columns, rows)


def _new_id(dialect_name: str) -> ColumnElement[Any]:
    """A random UUID made by the database (one per inserted row)."""
    if dialect_name == "postgresql":
        return cast(func.gen_random_uuid(), String)
    hex_ = func.lower(func.hex(func.randomblob(16)))
    parts = [func.substr(hex_, start, length) for start, length in _UUID_PARTS]
    return parts[0] + "-" + parts[1] + "-" + parts[2] + "-" + parts[3] + "-" + parts[4]


_UUID_PARTS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))


def create_test_delivery(session: Session, *, webhook: Webhook) -> WebhookDelivery:
    """A ``webhook_test`` delivery, due now; commits. Raises ``Conflict``
    (``webhook_disabled``) for a disabled subscription."""
    _refuse_disabled(webhook)
    now = utcnow()
    delivery = WebhookDelivery(
        id=str(uuid.uuid4()),
        org_id=webhook.org_id,
        webhook_id=webhook.id,
        event_seq=None,
        event_type=TEST_EVENT_TYPE,
        status=PENDING,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(delivery)
    session.info[DELIVERIES_WRITTEN] = True
    session.commit()
    return delivery


def redeliver(session: Session, *, webhook: Webhook, delivery_id: str) -> WebhookDelivery:
    """Sends a delivered or failed delivery again, with the same ``webhook-id``
    and a fresh round of tries; commits. Raises ``NotFound``
    (``delivery_not_found``) and ``Conflict`` (``delivery_pending`` while it is
    still being tried, ``webhook_disabled``)."""
    _refuse_disabled(webhook)
    delivery = get_delivery(session, webhook=webhook, delivery_id=delivery_id)
    now = utcnow()
    changed = session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == delivery.id, col(WebhookDelivery.status) != PENDING)
        .values(
            status=PENDING,
            round_attempts=0,
            next_attempt_at=now,
            enqueued_at=None,
            delivered_at=None,
            updated_at=now,
        )
    )
    if rows_changed(changed) == 0:
        session.rollback()
        raise Conflict("The delivery is still being tried.", code="delivery_pending")
    session.info[DELIVERIES_WRITTEN] = True
    session.commit()
    session.refresh(delivery)
    return delivery


def _refuse_disabled(webhook: Webhook) -> None:
    if not webhook.enabled:
        raise Conflict("The webhook is disabled; enable it first.", code="webhook_disabled")


# --- the log ------------------------------------------------------------------------


def get_delivery(session: Session, *, webhook: Webhook, delivery_id: str) -> WebhookDelivery:
    """The webhook's delivery, or ``NotFound`` (``delivery_not_found``, also for
    another webhook's or org's, and for an id that is not a UUID: PostgreSQL
    refuses to compare one holding a NUL)."""
    if not is_uuid(delivery_id):
        raise NotFound(f"Delivery {delivery_id!r} not found.", code="delivery_not_found")
    statement = select(WebhookDelivery).where(
        col(WebhookDelivery.org_id) == webhook.org_id,
        col(WebhookDelivery.webhook_id) == webhook.id,
        col(WebhookDelivery.id) == delivery_id,
    )
    delivery = session.scalars(statement).first()
    if delivery is None:
        raise NotFound(f"Delivery {delivery_id} not found.", code="delivery_not_found")
    return delivery


def list_deliveries(
    session: Session, *, webhook: Webhook, limit: int, cursor: str | None
) -> DeliveryPage:
    """The subscription's deliveries, newest first, one page."""
    statement = select(WebhookDelivery).where(
        col(WebhookDelivery.org_id) == webhook.org_id,
        col(WebhookDelivery.webhook_id) == webhook.id,
    )
    if cursor is not None:
        statement = statement.where(_before(*_decode_cursor(cursor)))
    statement = statement.order_by(
        col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc()
    ).limit(limit + 1)
    rows = list(session.scalars(statement))
    page, more = rows[:limit], len(rows) > limit
    now = utcnow()
    paused = webhook.paused_until if circuit.state(webhook, now=now) is CircuitState.open else None
    return DeliveryPage(
        items=[delivery_public(row, paused_until=paused) for row in page],
        next_cursor=_encode_cursor(page[-1]) if more else None,
    )


def delivery_public(
    delivery: WebhookDelivery, *, paused_until: datetime | None = None
) -> DeliveryPublic:
    """``paused_until``: the webhook's, while its circuit is open (shown on pending rows)."""
    pending = delivery.status == PENDING
    return DeliveryPublic(
        id=delivery.id,
        event_id=delivery.event_seq,
        event_type=delivery.event_type,
        status=DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at if pending else None,
        paused_until=paused_until if pending else None,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
    )


def _before(created_at: datetime, delivery_id: str) -> Any:
    return or_(
        col(WebhookDelivery.created_at) < created_at,
        and_(col(WebhookDelivery.created_at) == created_at, col(WebhookDelivery.id) < delivery_id),
    )


def _encode_cursor(delivery: WebhookDelivery) -> str:
    position = [isoformat(delivery.created_at), delivery.id]
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, delivery_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        position = (as_utc(datetime.fromisoformat(created_at)), str(uuid.UUID(delivery_id)))
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeError) as exc:
        raise InvalidInput(
            "The cursor is not one this API returned.", code="invalid_cursor"
        ) from exc
    return position
