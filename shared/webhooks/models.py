"""Webhook tables and the API's webhook models.

A subscription's event types are rows (``webhook_event_types``), so matching an
event to the subscriptions that want it is one indexed join in the event's own
transaction (``shared.webhooks.deliveries.create_deliveries``).
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, StrictBool, field_validator
from pydantic import Field as PydField
from sqlmodel import Field, SQLModel

from shared.core.models import StrictModel, UtcTime, utc_column
from shared.events.models import EventType

MAX_URL_LENGTH = 2_048
MAX_DESCRIPTION_LENGTH = 500
MAX_RECEIVER_LENGTH = 300
#: ``event_type`` of the delivery ``POST /webhooks/{id}/test`` makes; it has no event.
TEST_EVENT_TYPE = "webhook_test"


class CircuitState(StrEnum):
    closed = "closed"  # tries go out
    open = "open"  # paused: no try before ``paused_until``
    half_open = "half_open"  # the pause is over: one try at a time until one is delivered


class WebhookFormat(StrEnum):
    standard = "standard"
    slack = "slack"


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


# --- tables -----------------------------------------------------------------------


class Webhook(SQLModel, table=True):
    """One subscription. ``secret`` signs every delivery; it leaves the service
    only in the answers to create and rotate-secret."""

    __tablename__ = "webhooks"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "id", name="uq_webhooks_org_id"),
        sa.Index("ix_webhooks_org_created", "org_id", "created_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=36)
    org_id: str = Field(max_length=128)
    url: str = Field(max_length=MAX_URL_LENGTH)
    format: str = Field(max_length=16)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_LENGTH)
    enabled: bool = True
    #: Why it was disabled by the service (a 410 from the receiver); null otherwise.
    disabled_reason: str | None = Field(default=None, max_length=256)
    secret: str = Field(max_length=128)
    #: ``host:port`` of ``url``: the unit of the per-receiver cap on tries in flight.
    receiver: str = Field(default="", max_length=MAX_RECEIVER_LENGTH)
    #: Circuit breaker (``shared.webhooks.circuit``): tries failed in a row, since when,
    #: and while ``paused_until`` is set the breaker is open (no try before that time)
    #: or, once it has passed, half-open (one try at a time until one is delivered).
    consecutive_failures: int = 0
    failing_since: datetime | None = utc_column(nullable=True)
    paused_until: datetime | None = utc_column(nullable=True)
    #: The length of the last pause; the next one is twice as long (up to the maximum).
    pause_seconds: float = 0.0
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


class WebhookEventType(SQLModel, table=True):
    __tablename__ = "webhook_event_types"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["org_id", "webhook_id"], ["webhooks.org_id", "webhooks.id"], ondelete="CASCADE"
        ),
        sa.Index("ix_webhook_event_types_match", "org_id", "event_type"),
    )

    webhook_id: str = Field(primary_key=True, max_length=36)
    event_type: str = Field(primary_key=True, max_length=64)
    org_id: str = Field(max_length=128)
    position: int


class WebhookDelivery(SQLModel, table=True):
    """One event (or test) for one subscription, and how sending it went.

    ``attempts`` counts every try; ``round_attempts`` the tries since it was
    created or redelivered, which the retry schedule is counted in.
    ``enqueued_at`` is set while a job for the next try is in RQ (or being put
    there) and cleared when a try ends with a retry due at ``next_attempt_at``.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["org_id", "webhook_id"], ["webhooks.org_id", "webhooks.id"], ondelete="CASCADE"
        ),
        sa.Index("ix_webhook_deliveries_log", "webhook_id", "created_at", "id"),
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            sqlite_where=sa.text("status = 'pending' AND enqueued_at IS NULL"),
            postgresql_where=sa.text("status = 'pending' AND enqueued_at IS NULL"),
        ),
        sa.Index(
            "ix_webhook_deliveries_enqueued",
            "enqueued_at",
            sqlite_where=sa.text("status = 'pending' AND enqueued_at IS NOT NULL"),
            postgresql_where=sa.text("status = 'pending' AND enqueued_at IS NOT NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=36)
    org_id: str = Field(max_length=128)
    webhook_id: str = Field(max_length=36)
    #: The event's per-org ``seq`` (its SSE ``id``); null for a test delivery.
    event_seq: int | None = Field(default=None, sa_type=sa.BigInteger)
    event_type: str = Field(max_length=64)
    status: str = Field(max_length=16)
    attempts: int = 0
    round_attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=512)
    next_attempt_at: datetime | None = utc_column(nullable=True)
    enqueued_at: datetime | None = utc_column(nullable=True)
    delivered_at: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


# --- API models -------------------------------------------------------------------

#: What a subscription may ask for: every handoff event type.
SUBSCRIBABLE = tuple(event_type.value for event_type in EventType)
WebhookUrl = Annotated[str, PydField(min_length=1, max_length=MAX_URL_LENGTH)]


def _refuse_bad_events(events: list[str] | None) -> list[str] | None:
    if events is None:
        return None
    unknown = [event for event in events if event not in SUBSCRIBABLE]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}; one of {', '.join(SUBSCRIBABLE)}")
    if len(set(events)) != len(events):
        raise ValueError("an event type appears twice")
    return events


class WebhookCreate(StrictModel):
    url: WebhookUrl
    #: Default: every ``handoff_*`` type.
    events: list[str] | None = PydField(default=None, min_length=1, max_length=len(SUBSCRIBABLE))
    format: WebhookFormat = WebhookFormat.standard
    description: str = PydField(default="", max_length=MAX_DESCRIPTION_LENGTH)

    _events = field_validator("events")(_refuse_bad_events)


class WebhookPatch(StrictModel):
    """Any subset of the fields; an absent field is left alone."""

    url: WebhookUrl | None = None
    events: list[str] | None = PydField(default=None, min_length=1, max_length=len(SUBSCRIBABLE))
    format: WebhookFormat | None = None
    description: str | None = PydField(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    enabled: StrictBool | None = None

    _events = field_validator("events")(_refuse_bad_events)


class WebhookPublic(BaseModel):
    id: str
    url: str
    events: list[str]
    format: WebhookFormat
    description: str
    enabled: bool
    disabled_reason: str | None
    #: The circuit breaker: ``open`` while the receiver is paused after failing every try
    #: for a while (``paused_until`` says until when), ``half_open`` while one try probes it.
    circuit: CircuitState
    consecutive_failures: int
    paused_until: UtcTime | None
    created_at: UtcTime
    updated_at: UtcTime


class WebhookWithSecret(WebhookPublic):
    """The answer to create and rotate-secret: the only ones carrying ``secret``."""

    secret: str


class WebhookList(BaseModel):
    items: list[WebhookPublic]


class DeliveryPublic(BaseModel):
    id: str
    #: The event's SSE ``id`` (per-org ``seq``); null for a ``webhook_test``.
    event_id: int | None
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: UtcTime | None
    #: Pending while its webhook's receiver is paused (circuit open): no try before this.
    paused_until: UtcTime | None = None
    delivered_at: UtcTime | None
    created_at: UtcTime


class DeliveryPage(BaseModel):
    items: list[DeliveryPublic]
    next_cursor: str | None


class DeliveryAccepted(BaseModel):
    """``202``: the delivery that will be sent."""

    delivery: DeliveryPublic
