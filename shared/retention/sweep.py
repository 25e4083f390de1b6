"""The retention sweep, run by the workers' maintenance: at most once a minute
across all workers (a Redis key taken with ``SET NX``), in small batches, each
its own short transaction, so no lock is held long and no table is rewritten.

Per org (its settings, else the configured defaults; 0 keeps for ever):
- ``handoff_content_days``: a resolved or cancelled handoff last changed longer
  ago than that loses its content (``service.purge_content``).
- ``event_days``: events older than that, and outside the replay window (all
  but the org's last ``EVENT_REPLAY_LIMIT``), are deleted.
- ``delivery_days``: finished webhook deliveries (delivered or failed) last
  changed longer ago than that are deleted.

Running it twice, or on two workers at once, purges nothing twice: a purge is
conditional on ``purged_at IS NULL``, and deleting what is gone deletes nothing.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from shared import audit
from shared.core import keys
from shared.core.settings import Settings
from shared.core.timeutil import utcnow
from shared.events.models import Event, OrgEventCounter
from shared.handoffs.models import Handoff
from shared.retention.models import OrgRetention
from shared.retention.service import CLOSED, defaults, purge_content
from shared.webhooks.models import WebhookDelivery

log = logging.getLogger(__name__)

#: Rows one transaction purges or deletes.
BATCH_SIZE = 100
#: Batches one pass runs per org and kind at most; the next pass goes on.
MAX_BATCHES = 20
#: How often the sweep runs, across all workers.
RETENTION_SWEEP_SECONDS = 60


@dataclass
class RetentionReport:
    purged_handoffs: int = 0
    deleted_events: int = 0
    deleted_deliveries: int = 0

    def __bool__(self) -> bool:
        return bool(self.purged_handoffs or self.deleted_events or self.deleted_deliveries)


def try_sweep_retention(
    *, engine: Engine, redis: Redis, settings: Settings
) -> RetentionReport | None:
    """``sweep_retention`` when no worker ran it in the last minute; None when
    another did or Redis is unreachable (a later pass runs it)."""
    try:
        if not redis.set(keys.RETENTION_SWEEP_LOCK, "1", nx=True, ex=RETENTION_SWEEP_SECONDS):
            return None
    except RedisError as exc:
        log.warning("retention: redis unavailable: %s", exc)
        return None
    return sweep_retention(engine=engine, settings=settings)


def sweep_retention(
    *, engine: Engine, settings: Settings, now: datetime | None = None
) -> RetentionReport:
    """One pass over every org's retention (see the module docstring)."""
    now = now or utcnow()
    report = RetentionReport()
    for org_id, days in _policies(engine, settings):
        if days["handoff_content_days"]:
            cutoff = now - timedelta(days=days["handoff_content_days"])
            report.purged_handoffs += _purge_handoffs(engine, org_id, cutoff)
        if days["event_days"]:
            cutoff = now - timedelta(days=days["event_days"])
            report.deleted_events += _delete_events(engine, org_id, cutoff, settings)
        if days["delivery_days"]:
            cutoff = now - timedelta(days=days["delivery_days"])
            report.deleted_deliveries += _delete_deliveries(engine, org_id, cutoff)
    return report


#: ``None`` as an org id: every org without settings of its own.
Policy = tuple[str | None, dict[str, int]]


def _policies(engine: Engine, settings: Settings) -> Iterator[Policy]:
    with Session(engine) as session:
        rows = session.exec(select(OrgRetention)).all()
    for row in rows:
        yield (
            row.org_id,
            {
                "handoff_content_days": row.handoff_content_days,
                "event_days": row.event_days,
                "delivery_days": row.delivery_days,
            },
        )
    if any(defaults(settings).values()):
        yield None, defaults(settings)


def _of_org(column: Any, org_id: str | None) -> sa.ColumnElement[bool]:
    if org_id is not None:
        return column == org_id
    return column.not_in(sa.select(col(OrgRetention.org_id)).scalar_subquery())


def _purge_handoffs(engine: Engine, org_id: str | None, cutoff: datetime) -> int:
    purged = 0
    for _ in range(MAX_BATCHES):
        with Session(engine) as session:
            due = session.exec(
                select(Handoff.id, Handoff.org_id, Handoff.snapshot)
                .where(
                    _of_org(col(Handoff.org_id), org_id),
                    col(Handoff.status).in_(CLOSED),
                    col(Handoff.purged_at).is_(None),
                    col(Handoff.updated_at) < cutoff,
                )
                .limit(BATCH_SIZE)
            ).all()
            for handoff_id, handoff_org, snapshot in due:
                if purge_content(session=session, handoff_id=handoff_id, snapshot=dict(snapshot)):
                    audit.record(
                        session,
                        org_id=handoff_org,
                        actor=audit.SYSTEM,
                        kind="handoff.purged",
                        target_id=handoff_id,
                    )
                    purged += 1
            session.commit()
        if len(due) < BATCH_SIZE:
            break
    return purged


def _delete_events(engine: Engine, org_id: str | None, cutoff: datetime, settings: Settings) -> int:
    # Outside the replay window: a Last-Event-ID older than it gets `reset` anyway.
    replayable_from = (
        sa.select(col(OrgEventCounter.last_seq) - settings.event_replay_limit)
        .where(col(OrgEventCounter.org_id) == col(Event.org_id))
        .scalar_subquery()
    )
    return _delete_in_batches(
        engine,
        Event,
        _of_org(col(Event.org_id), org_id),
        col(Event.at) < cutoff,
        col(Event.seq) <= replayable_from,
    )


def _delete_deliveries(engine: Engine, org_id: str | None, cutoff: datetime) -> int:
    return _delete_in_batches(
        engine,
        WebhookDelivery,
        _of_org(col(WebhookDelivery.org_id), org_id),
        col(WebhookDelivery.status) != "pending",
        col(WebhookDelivery.updated_at) < cutoff,
    )


def _delete_in_batches(engine: Engine, table: type, *where: sa.ColumnElement[bool]) -> int:
    """Delete the rows matching ``where``, ``BATCH_SIZE`` at a time by primary key."""
    key = col(table.id)  # type: ignore[attr-defined]
    deleted = 0
    for _ in range(MAX_BATCHES):
        with Session(engine) as session:
            batch = sa.select(key).where(*where).limit(BATCH_SIZE).scalar_subquery()
            result = session.execute(sa.delete(table).where(key.in_(batch)))
            session.commit()
        count = result.rowcount  # type: ignore[attr-defined]
        deleted += count
        if count < BATCH_SIZE:
            break
    return deleted
