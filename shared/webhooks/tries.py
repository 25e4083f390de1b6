"""Delivery tries: claiming what is due fairly (caps per org and per receiver host),
finishing a try (retry schedule, the circuit breaker), releasing and requeueing."""

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlmodel import Session, col

from shared.core.db import rows_changed
from shared.core.settings import Settings
from shared.core.timeutil import as_utc, isoformat, utcnow
from shared.webhooks import circuit
from shared.webhooks.circuit import Breaker
from shared.webhooks.deliveries import MAX_ERROR_LENGTH, PENDING
from shared.webhooks.models import (
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
)

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
