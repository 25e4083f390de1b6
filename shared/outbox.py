"""The outbox: events written with their state change, and relayed to Redis.

Recording: :func:`record_event` adds the event (and its webhook deliveries) to
the caller's transaction and notes the org in ``session.info``.

Waking: after a commit through an engine with a started :class:`Outbox`, the
orgs just written go to that process's relay and the webhook dispatcher wakes.

Relaying: :class:`EventRelay` publishes an org's unpublished events in ``seq``
order under that org's Redis lock, then marks them published. Different orgs
relay in parallel, in any process; one org's events leave in order because
only the holder of its lock reads and publishes them. A poll every second
sweeps every org with unpublished events (a process that died between commit
and publish). When Redis or the database is down the relay backs off: events
are delayed, never lost. A crash between publishing and marking can publish an
event twice; streams drop duplicates by ``seq``.
"""

import logging
import random
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

from redis import Redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import Engine, Text, cast, event, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col

from shared import keys
from shared.auth import Principal
from shared.db import dialect_insert, session_scope
from shared.events import handoff_public, row_json
from shared.metrics import EVENTS_PUBLISHED
from shared.models import Event, EventType, Handoff, OrgEventCounter
from shared.request_context import REQUEST_ID
from shared.settings import Settings
from shared.timeutil import utcnow
from shared.webhooks.deliveries import DELIVERIES_WRITTEN, create_deliveries
from shared.webhooks.dispatch import DeliveryDispatcher

log = logging.getLogger(__name__)

BATCH_SIZE = 500
POLL_INTERVAL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 5.0
LOCK_TTL_SECONDS = 10.0
#: How soon an org whose lock another relay holds is tried again: the holder may
#: have read before our event committed.
LOCK_RETRY_SECONDS = 0.002

#: ``session.info`` key: the orgs whose events the transaction wrote.
ORGS_WRITTEN = "outbox_orgs_written"


# --- recording ---------------------------------------------------------------------


def record_event(
    session: Session,
    *,
    handoff: Handoff,
    type: EventType,
    actor: Principal | None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Add the event for ``handoff``'s new state to the session's transaction.

    The caller commits. The per-org counter row stays locked until then, so an
    org's events commit in ``seq`` order and a replay after ``seq`` N never
    misses an event that commits later with a smaller number. The webhook
    deliveries the event calls for are written in the same transaction.
    """
    event = Event(
        org_id=handoff.org_id,
        seq=_next_seq(session, handoff.org_id),
        type=type.value,
        handoff_id=handoff.id,
        actor_id=actor.user_id if actor else None,
        actor_name=actor.name if actor else None,
        at=utcnow(),
        handoff=handoff_public(handoff).model_dump(mode="json"),
        request_id=REQUEST_ID.get(),
        data=data,
    )
    session.add(event)
    create_deliveries(
        session, org_id=event.org_id, event_seq=event.seq, event_type=event.type, at=event.at
    )
    session.info.setdefault(ORGS_WRITTEN, set()).add(event.org_id)
    return event


def _next_seq(session: Session, org_id: str) -> int:
    bind = session.connection()
    insert = dialect_insert(bind)
    table = OrgEventCounter.__table__  # type: ignore[attr-defined]
    statement = (
        insert(table)
        .values(org_id=org_id, last_seq=1)
        .on_conflict_do_update(
            index_elements=[table.c.org_id], set_={"last_seq": table.c.last_seq + 1}
        )
        .returning(table.c.last_seq)
    )
    return int(session.execute(statement).scalar_one())


# --- waking ------------------------------------------------------------------------

#: Per engine: the started outbox its commits wake.
_outboxes: "weakref.WeakKeyDictionary[Engine, Outbox]" = weakref.WeakKeyDictionary()


def _after_commit(session: OrmSession) -> None:
    orgs: set[str] = session.info.pop(ORGS_WRITTEN, set())
    deliveries = session.info.pop(DELIVERIES_WRITTEN, False)
    if not (orgs or deliveries) or session.bind is None:
        return
    outbox = _outboxes.get(session.bind.engine)
    if outbox is not None:
        outbox.committed(orgs)


class Outbox:
    """One process's outbox threads: the event relay and the webhook dispatcher,
    woken by commits through ``engine`` (any session) while started."""

    def __init__(self, *, engine: Engine, redis: Redis, settings: Settings) -> None:
        self._engine = engine
        self.relay = EventRelay(engine=engine, redis=redis)
        self.dispatcher = DeliveryDispatcher(engine=engine, redis=redis, settings=settings)

    def start(self) -> None:
        if not event.contains(OrmSession, "after_commit", _after_commit):
            event.listen(OrmSession, "after_commit", _after_commit)
        _outboxes[self._engine] = self
        self.relay.start()
        self.dispatcher.start()

    def stop(self) -> None:
        """Stop waking; the relay publishes what is pending (best effort)."""
        _outboxes.pop(self._engine, None)
        self.dispatcher.stop()
        self.relay.stop()

    def committed(self, orgs: Iterable[str]) -> None:
        """Called after a commit that wrote events of ``orgs`` (maybe none: a
        delivery alone)."""
        self.relay.notify(orgs)
        self.dispatcher.notify()


# --- relaying ----------------------------------------------------------------------


class EventRelay:
    """Publishes on a thread: the notified orgs at once, every org with
    unpublished events every ``POLL_INTERVAL_SECONDS``."""

    def __init__(self, *, engine: Engine, redis: Redis) -> None:
        self._engine = engine
        self._redis = redis
        self._woken: set[str] = set()
        self._woken_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Relay what is pending (best effort), then stop the thread."""
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=LOCK_TTL_SECONDS + 5)

    def notify(self, orgs: Iterable[str]) -> None:
        """Relay ``orgs`` soon (called after a commit that wrote their events)."""
        with self._woken_lock:
            self._woken.update(orgs)
        self._wake.set()

    def _run(self) -> None:
        backoff, retry_soon = 0.0, False
        next_sweep = time.monotonic() + POLL_INTERVAL_SECONDS
        while True:
            wait = LOCK_RETRY_SECONDS if retry_soon else next_sweep - time.monotonic()
            self._wake.wait(backoff or max(wait, 0.0))
            self._wake.clear()
            stopping = self._stopped.is_set()
            try:
                retry_soon = self._relay_woken()
                if stopping or time.monotonic() >= next_sweep:
                    self.relay_pending()
                    next_sweep = time.monotonic() + POLL_INTERVAL_SECONDS
                backoff = 0.0
            except (RedisError, LockError, SQLAlchemyError) as exc:
                backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
                log.warning("event relay: %s; retrying in %.1f s", exc, backoff)
            if stopping:
                return

    def _relay_woken(self) -> bool:
        """Relay the notified orgs; returns whether one was busy (kept for a retry)."""
        with self._woken_lock:
            orgs, self._woken = self._woken, set()
        busy = set()
        try:
            for org_id in orgs:
                if self.relay_org(org_id) is None:
                    busy.add(org_id)
        except BaseException:
            busy = orgs  # tried again after the back-off; the poll would find them too
            raise
        finally:
            if busy:
                self.notify(busy)
        return bool(busy)

    def relay_pending(self) -> int:
        """Publish the unpublished events of every org whose lock is free;
        returns how many were published. Orgs are taken in random order, so
        relays sweeping at once split them instead of queueing on the same one."""
        with session_scope(self._engine) as session:
            statement = sa_select(col(Event.org_id)).where(col(Event.published_at).is_(None))
            orgs = list(session.execute(statement.distinct()).scalars())
        random.shuffle(orgs)
        return sum(self.relay_org(org_id) or 0 for org_id in orgs)

    def relay_org(self, org_id: str) -> int | None:
        """Publish the org's unpublished events in ``seq`` order under its lock;
        returns how many, or None when another relay holds the lock."""
        lock = self._redis.lock(keys.relay_lock(org_id), timeout=LOCK_TTL_SECONDS)
        if not lock.acquire(blocking=False):
            return None
        try:
            total = 0
            while (published := self._relay_batch(org_id)) == BATCH_SIZE:
                total += published
                lock.extend(LOCK_TTL_SECONDS, replace_ttl=True)  # a long backlog keeps it
            # A short batch was the last: an event committed after our read woke
            # its process's relay, which retries this lock until we release it.
            return total + published
        finally:
            lock.release()

    def _relay_batch(self, org_id: str) -> int:
        """One batch: read (no transaction stays open while Redis is called),
        publish in order, then mark published."""
        with session_scope(self._engine) as session:
            rows = session.connection().execute(_unpublished(org_id)).all()
            session.rollback()
        if not rows:
            return 0
        with self._redis.pipeline(transaction=False) as pipeline:
            for row in rows:
                pipeline.publish(keys.EVENTS_CHANNEL, row_json(row))
            pipeline.execute()
        ids = [row.id for row in rows]
        with session_scope(self._engine) as session:
            session.execute(
                update(Event).where(col(Event.id).in_(ids)).values(published_at=utcnow())
            )
            session.commit()
        EVENTS_PUBLISHED.inc(len(rows))
        return len(rows)


def _unpublished(org_id: str) -> Any:
    """The org's oldest unpublished events, by ``seq`` (index ``ix_events_unpublished``).
    The stored handoff JSON is read as text and spliced in, never decoded."""
    return (
        sa_select(
            col(Event.id),
            col(Event.seq),
            col(Event.type),
            col(Event.handoff_id),
            col(Event.org_id),
            col(Event.at),
            col(Event.actor_id),
            col(Event.actor_name),
            col(Event.request_id),
            col(Event.data),
            cast(col(Event.handoff), Text).label("handoff_json"),
        )
        .where(col(Event.org_id) == org_id, col(Event.published_at).is_(None))
        .order_by(col(Event.seq))
        .limit(BATCH_SIZE)
    )
