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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from shared.core.db import is_uuid, rows_changed
from shared.core.errors import Conflict, InvalidInput, NotFound
from shared.core.settings import Settings
from shared.core.timeutil import as_utc, isoformat, utcnow
from shared.webhooks import circuit
from shared.webhooks.circuit import Breaker
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
            literal(PENDING),
            literal(0),
            literal(0),
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


# --- tries --------------------------------------------------------------------------


@dataclass(frozen=True)
class InFlightCaps:
    """Tries in flight (enqueued or being sent), across every worker, that the
    dispatcher lets one org and one receiver have (``Settings.webhook_max_in_flight_*``)."""

    per_org: int
    per_host: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "InFlightCaps":
        return cls(
            per_org=settings.webhook_max_in_flight_per_org,
            per_host=settings.webhook_max_in_flight_per_host,
        )


def claim_due(
    session: Session, *, now: datetime, limit: int, caps: InFlightCaps
) -> list[WebhookDelivery]:
    """Marks up to ``limit`` due, unqueued deliveries as enqueued and returns
    them, oldest due first; commits. Fair: an org, or a receiver, that already
    has ``caps`` tries in flight gets no more now, and so cannot fill the queue
    ahead of the others. A paused webhook (circuit open) gets none, a half-open
    one a single try at a time. The caps are counted in the same statement;
    concurrent dispatchers may each see the same free room, so an org can
    briefly hold a few tries more than its cap. The conditional update lets
    concurrent dispatchers share the work without taking the same row twice."""
    parameters = {"now": now, "limit": limit, "per_org": caps.per_org, "per_host": caps.per_host}
    claimed = session.scalars(_claim_statement(), parameters)
    ordered = sorted(claimed, key=lambda d: as_utc(d.next_attempt_at or now))
    session.commit()
    return ordered


@functools.cache
def _claim_statement() -> Any:
    """``claim_due``'s statement, built once with bound parameters (building it
    costs far more than the database's half a millisecond to run it)."""
    deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
    now = bindparam("now", type_=deliveries.c.next_attempt_at.type)
    due = _fair_due(
        now=now,
        limit=bindparam("limit", type_=Integer),
        per_org=bindparam("per_org", type_=Integer),
        per_host=bindparam("per_host", type_=Integer),
    )
    return (
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id).in_(due),
            col(WebhookDelivery.enqueued_at).is_(None),
            col(WebhookDelivery.status) == PENDING,
        )
        .values(enqueued_at=now)
        .returning(WebhookDelivery)
        .execution_options(synchronize_session=False)
    )


def _fair_due(*, now: Any, limit: Any, per_org: Any, per_host: Any) -> Any:
    """The ids to claim, in three filters, each ranking only the rows the one
    before kept (so rows held back by one cap never take another cap's room):
    a half-open webhook's first row; then each org's oldest rows while rank +
    its tries in flight stays within its cap; then each receiver's likewise."""
    deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
    webhooks = Webhook.__table__  # type: ignore[attr-defined]
    busy = _in_flight(deliveries, webhooks)
    due = (
        select(
            deliveries.c.id,
            deliveries.c.org_id,
            deliveries.c.next_attempt_at,
            webhooks.c.receiver,
            webhooks.c.paused_until,
            _rank(deliveries.c.webhook_id, deliveries).label("rank"),
            func.coalesce(busy.c.n, 0).label("busy"),
        )
        .select_from(
            deliveries.join(webhooks, _same_webhook(deliveries, webhooks)).outerjoin(
                busy, busy.c.webhook_id == deliveries.c.webhook_id
            )
        )
        .where(
            deliveries.c.status == PENDING,
            deliveries.c.enqueued_at.is_(None),
            deliveries.c.next_attempt_at <= now,
            or_(webhooks.c.paused_until.is_(None), webhooks.c.paused_until <= now),
            # Groups already at their cap: none of their rows can go, so rank none of them.
            deliveries.c.org_id.not_in(_full(busy.c.org_id, busy, per_org)),
            webhooks.c.receiver.not_in(_full(busy.c.receiver, busy, per_host)),
        )
        .subquery()
    )
    probes = _within(due, or_(due.c.paused_until.is_(None), due.c.rank + due.c.busy <= 1))
    by_org = _capped(probes, probes.c.org_id, busy.c.org_id, busy, per_org)
    by_host = _capped(by_org, by_org.c.receiver, busy.c.receiver, busy, per_host)
    return select(by_host.c.id).order_by(by_host.c.next_attempt_at).limit(limit).scalar_subquery()


def _same_webhook(deliveries: Any, webhooks: Any) -> Any:
    return and_(webhooks.c.id == deliveries.c.webhook_id, webhooks.c.org_id == deliveries.c.org_id)


def _in_flight(deliveries: Any, webhooks: Any) -> Any:
    """Per webhook (with its org and receiver): pending rows enqueued, i.e. tries
    queued in RQ or being sent."""
    return (
        select(
            deliveries.c.org_id,
            webhooks.c.receiver,
            deliveries.c.webhook_id,
            func.count().label("n"),
        )
        .select_from(deliveries.join(webhooks, _same_webhook(deliveries, webhooks)))
        .where(deliveries.c.status == PENDING, deliveries.c.enqueued_at.is_not(None))
        .group_by(deliveries.c.org_id, webhooks.c.receiver, deliveries.c.webhook_id)
        .cte("in_flight")
    )


def _full(group: Any, busy: Any, cap: Any) -> Any:
    """The groups (orgs or receivers) with ``cap`` tries or more in flight."""
    return select(group).group_by(group).having(func.sum(busy.c.n) >= cap)


def _rank(partition: Any, rows: Any) -> Any:
    """1 for the oldest due row of ``partition``, 2 for the next…"""
    return func.row_number().over(
        partition_by=partition, order_by=(rows.c.next_attempt_at, rows.c.id)
    )


def _within(rows: Any, condition: Any) -> Any:
    columns = [rows.c.id, rows.c.org_id, rows.c.next_attempt_at, rows.c.receiver]
    return select(*columns).where(condition).subquery()


def _capped(rows: Any, group: Any, busy_group: Any, busy: Any, cap: Any) -> Any:
    """``rows`` kept while their rank in ``group`` plus the group's tries in flight
    stays within ``cap``."""
    in_flight = select(busy_group.label("key"), func.sum(busy.c.n).label("n")).group_by(busy_group)
    in_flight_sq = in_flight.subquery()
    ranked = (
        select(
            rows.c.id,
            rows.c.org_id,
            rows.c.next_attempt_at,
            rows.c.receiver,
            (_rank(group, rows) + func.coalesce(in_flight_sq.c.n, 0)).label("taken"),
        )
        .select_from(rows.outerjoin(in_flight_sq, in_flight_sq.c.key == group))
        .subquery()
    )
    return _within(ranked, ranked.c.taken <= cap)


def in_flight_by_org(session: Session, *, org_ids: list[str]) -> dict[str, int]:
    """Pending deliveries enqueued (tries queued or being sent), per org of ``org_ids``."""
    statement = (
        select(col(WebhookDelivery.org_id), func.count())
        .where(
            col(WebhookDelivery.status) == PENDING,
            col(WebhookDelivery.enqueued_at).is_not(None),
            col(WebhookDelivery.org_id).in_(org_ids),
        )
        .group_by(col(WebhookDelivery.org_id))
    )
    return {org_id: count for org_id, count in session.execute(statement)}


def release(session: Session, *, delivery_ids: list[str]) -> None:
    """Undo :func:`claim_due` for jobs that could not be enqueued; commits."""
    if delivery_ids:
        session.execute(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.id).in_(delivery_ids), col(WebhookDelivery.status) == PENDING
            )
            .values(enqueued_at=None)
        )
        session.commit()


def finish_try(
    session: Session,
    *,
    delivery: WebhookDelivery,
    status_code: int | None,
    error: str | None,
    intervals: list[float],
    breaker: Breaker,
    now: datetime | None = None,
) -> str:
    """Records one try of ``delivery`` (as loaded when the try began) and
    decides what follows; commits. Returns the outcome: ``delivered`` (2xx),
    ``disabled`` (410: the subscription is disabled, the delivery failed),
    ``retry`` (due again after the next interval) or ``failed`` (no try left),
    or ``stale`` when another run recorded this try first. The webhook's
    circuit breaker counts the try in the same transaction (``circuit``); the
    try that opens it says so in its ``last_error``."""
    now = now or utcnow()
    round_attempts = delivery.round_attempts + 1
    values: dict[str, Any] = {
        "attempts": delivery.attempts + 1,
        "round_attempts": round_attempts,
        "last_status_code": status_code,
        "last_error": error[:MAX_ERROR_LENGTH] if error else None,
        "enqueued_at": None,
        "updated_at": now,
    }
    outcome = _outcome(status_code, round_attempts, len(intervals) + 1)
    if outcome == "delivered":
        values.update(status=DeliveryStatus.delivered.value, delivered_at=now, next_attempt_at=None)
    elif outcome == "retry":
        delay = intervals[round_attempts - 1]
        values.update(next_attempt_at=now + timedelta(seconds=delay))
    else:
        values.update(status=DeliveryStatus.failed.value, next_attempt_at=None)
    changed = session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id) == delivery.id,
            col(WebhookDelivery.status) == PENDING,
            col(WebhookDelivery.attempts) == delivery.attempts,
        )
        .values(**values)
    )
    if rows_changed(changed) == 0:
        session.rollback()
        return "stale"
    if outcome == "disabled":
        _disable(session, delivery, reason=f"The receiver answered 410 Gone at {isoformat(now)}.")
    else:
        _count_for_breaker(session, delivery, outcome, values, now=now, breaker=breaker)
    session.commit()
    return outcome


def _count_for_breaker(
    session: Session,
    delivery: WebhookDelivery,
    outcome: str,
    values: dict[str, Any],
    *,
    now: datetime,
    breaker: Breaker,
) -> None:
    ids = {"org_id": delivery.org_id, "webhook_id": delivery.webhook_id}
    if outcome == "delivered":
        circuit.record_delivered(session, **ids)
        return
    paused_until = circuit.record_failure(session, **ids, now=now, breaker=breaker)
    if paused_until is not None:
        webhook = session.get(Webhook, delivery.webhook_id)
        failures = webhook.consecutive_failures if webhook is not None else 0
        note = circuit.paused_note(paused_until, failures)
        error = (values["last_error"] or "")[: MAX_ERROR_LENGTH - len(note)] + note
        session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == delivery.id)
            .values(last_error=error)
        )


def _outcome(status_code: int | None, round_attempts: int, tries: int) -> str:
    if status_code is not None and 200 <= status_code < 300:
        return "delivered"
    if status_code == 410:
        return "disabled"
    return "retry" if round_attempts < tries else "failed"


def fail_without_try(session: Session, *, delivery: WebhookDelivery, reason: str) -> bool:
    """Ends a pending delivery that will not be tried (its subscription is
    disabled); commits. False if it was no longer pending."""
    changed = session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == delivery.id, col(WebhookDelivery.status) == PENDING)
        .values(
            status=DeliveryStatus.failed.value,
            last_error=reason,
            next_attempt_at=None,
            enqueued_at=None,
            updated_at=utcnow(),
        )
    )
    session.commit()
    return rows_changed(changed) > 0


def _disable(session: Session, delivery: WebhookDelivery, *, reason: str) -> None:
    session.execute(
        update(Webhook)
        .where(col(Webhook.id) == delivery.webhook_id, col(Webhook.org_id) == delivery.org_id)
        .values(enabled=False, disabled_reason=reason, updated_at=utcnow())
    )


def enqueued_before(session: Session, *, cutoff: datetime, after: str, limit: int) -> list[Any]:
    """Pending deliveries enqueued before ``cutoff``, by id after ``after``:
    ``(id, org_id, webhook_id, event_type, attempts, enqueued_at)`` rows."""
    statement = (
        select(
            col(WebhookDelivery.id),
            col(WebhookDelivery.org_id),
            col(WebhookDelivery.webhook_id),
            col(WebhookDelivery.event_type),
            col(WebhookDelivery.attempts),
            col(WebhookDelivery.enqueued_at),
        )
        .where(
            col(WebhookDelivery.status) == PENDING,
            col(WebhookDelivery.enqueued_at).is_not(None),
            col(WebhookDelivery.enqueued_at) < cutoff,
            col(WebhookDelivery.id) > after,
        )
        .order_by(col(WebhookDelivery.id))
        .limit(limit)
    )
    return list(session.execute(statement))


def requeue(session: Session, *, delivery_id: str, enqueued_at: datetime) -> bool:
    """Makes a delivery whose job was lost due again now (unless something
    changed it meanwhile); commits."""
    changed = session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id) == delivery_id,
            col(WebhookDelivery.status) == PENDING,
            col(WebhookDelivery.enqueued_at) == enqueued_at,
        )
        .values(enqueued_at=None, next_attempt_at=utcnow())
    )
    session.commit()
    return rows_changed(changed) > 0
