"""The circuit breaker of a webhook, and the receiver its tries are capped by.

A webhook whose tries have all failed, at least ``webhook_circuit_failures`` in
a row over at least ``webhook_circuit_min_seconds``, is *paused*: the
dispatcher claims none of its deliveries before ``paused_until`` (open). When
the pause is over it claims one at a time (half-open): a delivered try closes
the breaker, a failed one pauses it again for twice as long, up to
``webhook_circuit_max_pause_seconds`` (as Stripe and Svix back off a failing
endpoint). Pausing costs a delivery no try of its schedule: its rows wait, due.
A 2xx anywhere clears everything. The state lives on the webhook row and is
changed in the transaction that records the try (``deliveries.finish_try``).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlmodel import Session, col

from shared.core.settings import Settings
from shared.core.timeutil import as_utc, isoformat
from shared.webhooks.models import MAX_RECEIVER_LENGTH, CircuitState, Webhook


def receiver_of(url: str) -> str:
    """``host:port`` of ``url`` (lower case, the scheme's port when none is
    given): tries in flight are capped per receiver by this."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # out of range: the sender refuses the URL anyway
        port = None
    port = port or (443 if parts.scheme.lower() == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"[:MAX_RECEIVER_LENGTH]


@dataclass(frozen=True)
class Breaker:
    """The breaker's settings (``Settings.webhook_circuit_*``)."""

    failures: int
    min_seconds: float
    pause_seconds: float
    max_pause_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "Breaker":
        return cls(
            failures=settings.webhook_circuit_failures,
            min_seconds=settings.webhook_circuit_min_seconds,
            pause_seconds=settings.webhook_circuit_pause_seconds,
            max_pause_seconds=settings.webhook_circuit_max_pause_seconds,
        )


def state(webhook: Webhook, *, now: datetime) -> CircuitState:
    if webhook.paused_until is None:
        return CircuitState.closed
    return CircuitState.open if as_utc(webhook.paused_until) > now else CircuitState.half_open


def record_delivered(session: Session, *, org_id: str, webhook_id: str) -> None:
    """Closes the breaker (in the caller's transaction)."""
    session.execute(
        update(Webhook)
        .where(
            col(Webhook.id) == webhook_id,
            col(Webhook.org_id) == org_id,
            col(Webhook.consecutive_failures) > 0,
        )
        .values(consecutive_failures=0, failing_since=None, paused_until=None, pause_seconds=0.0)
    )


def record_failure(
    session: Session, *, org_id: str, webhook_id: str, now: datetime, breaker: Breaker
) -> datetime | None:
    """Counts one failed try (in the caller's transaction) and opens the breaker
    when it should: returns the new ``paused_until``, or None if it did not open.
    A try that ends while the breaker is open only counts."""
    webhook = session.get(Webhook, webhook_id, with_for_update=True)
    if webhook is None or webhook.org_id != org_id:
        return None
    webhook.consecutive_failures += 1
    webhook.failing_since = webhook.failing_since or now
    pause = _pause(webhook, now=now, breaker=breaker)
    if pause is not None:
        webhook.pause_seconds = pause
        webhook.paused_until = now + timedelta(seconds=pause)
    session.add(webhook)
    session.flush()
    return webhook.paused_until if pause is not None else None


def _pause(webhook: Webhook, *, now: datetime, breaker: Breaker) -> float | None:
    """Seconds to pause for, or None to go on trying."""
    current = state(webhook, now=now)
    if current is CircuitState.open:
        return None
    if current is CircuitState.half_open:  # the probe failed
        return min(max(webhook.pause_seconds * 2, breaker.pause_seconds), breaker.max_pause_seconds)
    failing_for = (now - as_utc(webhook.failing_since or now)).total_seconds()
    if webhook.consecutive_failures >= breaker.failures and failing_for >= breaker.min_seconds:
        return min(breaker.pause_seconds, breaker.max_pause_seconds)
    return None


def paused_note(paused_until: datetime, failures: int) -> str:
    """Appended to the error of the try that opened the breaker (the delivery log)."""
    return f" [receiver paused until {isoformat(paused_until)} after {failures} failed tries]"
