"""The relay: publishes committed events to Redis in seq order per org, exactly
once in effect (a Lua script skips what was published), woken after commit by
``outbox.Outbox`` and polling as a fallback."""

import functools
import logging
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from redis import Redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import ARRAY, Connection, Dialect, Engine, any_, bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from shared.core import keys
from shared.core.db import driver_autocommit, session_scope
from shared.core.metrics import EVENTS_PUBLISHED
from shared.core.script_batch import call_script
from shared.core.timeutil import utcnow
from shared.events.in_order import PUBLISH_IN_ORDER, Outcome, script_args, script_keys
from shared.events.models import Event
from shared.events.record import row_json, wire_columns

log = logging.getLogger(__name__)

BATCH_SIZE = 500
POLL_INTERVAL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 5.0
LOCK_TTL_SECONDS = 10.0
#: How soon an org whose lock another relay holds is tried again: the holder may
#: have read before our event committed.
LOCK_RETRY_SECONDS = 0.002
#: How long events the fast path published wait to be marked in the database:
#: one UPDATE marks every event published meanwhile (not one per commit). Well
#: under the poll, so another process's sweep rarely finds them unmarked (which
#: is harmless: the publish script skips what is out).
MARK_DELAY_SECONDS = 0.05

#: The poll's sweep leaves events younger than this to the process that committed
#: them: its fast path publishes them at once and marks them within
#: ``MARK_DELAY_SECONDS``. Under load, sweeping them too relayed every busy org
#: again each second (a lock, a read, a publish and a mark per org, per replica).
#: An event whose process died unpublished waits this much longer.
SWEEP_MIN_AGE_SECONDS = 0.5

#: How long an event the script held (its predecessor, committed just before it,
#: not out yet) waits for the predecessor's own publish before the relay thread
#: publishes both from the log: the predecessor's process may have died.
HOLD_GRACE_SECONDS = MARK_DELAY_SECONDS


@dataclass(frozen=True, slots=True)
class Committed:
    """A committed event as the fast path publishes it."""

    org_id: str
    seq: int
    id: int
    json: str


# --- relaying ----------------------------------------------------------------------


class EventRelay:
    """Publishes on a thread: committed events at once, notified orgs from the
    log, and every org with unpublished events every ``POLL_INTERVAL_SECONDS``."""

    def __init__(self, *, engine: Engine, redis: Redis) -> None:
        self._engine = engine
        self._redis = redis
        self._publish_in_order = redis.register_script(PUBLISH_IN_ORDER)
        self._published_ids: list[int] = []  # to mark in the database
        self._woken: set[str] = set()
        #: Per org, when and up to which seq the script held its events (oldest first).
        self._holds: dict[str, list[tuple[float, int]]] = {}
        self._backing_off = False
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

    def publish_now(self, events: list[Committed]) -> None:
        """The fast path, in the calling (committing) thread: each org's events
        in one script call (``call_script``: at the end of the request's
        ``batched_scripts`` block when in one), no lock, no read. An event that
        overtook its predecessor (committed just before it, by another thread or
        process) is held by the script until the predecessor is out; one still
        held after ``HOLD_GRACE_SECONDS``, one the script refused (the org's last
        seq unknown), or any when Redis is down (not tried while the relay backs
        off) goes to the relay thread's log path. What is out is marked within
        ``MARK_DELAY_SECONDS``. Never raises."""
        if not events:
            return
        if self._backing_off:
            self.notify({event.org_id for event in events})
            return
        by_org: dict[str, list[Committed]] = {}
        for item in events:
            by_org.setdefault(item.org_id, []).append(item)
        for org_id, org_events in by_org.items():
            org_events.sort(key=lambda item: item.seq)
            call_script(
                self._redis,
                self._publish_in_order,
                keys=script_keys(org_id),
                args=script_args(org_events, from_log=False),
                done=functools.partial(self._published_now, org_id, org_events),
                failed=functools.partial(self._not_published_now, org_id),
            )

    def _published_now(self, org_id: str, events: list[Committed], reply: Any) -> None:
        outcome = Outcome.of(reply)
        if outcome is None:  # the org's last seq is unknown: the log path publishes them
            self.notify({org_id})
            return
        EVENTS_PUBLISHED.inc(outcome.published)
        with self._woken_lock:
            self._published_ids.extend(outcome.out(events))
            if outcome.held:
                self._holds.setdefault(org_id, []).append((time.monotonic(), outcome.held))

    def _not_published_now(self, org_id: str, _error: RedisError) -> None:
        self.notify({org_id})

    def notify(self, orgs: Iterable[str] = (), published_ids: Iterable[int] = ()) -> None:
        """Relay ``orgs`` from the log and mark ``published_ids``, soon."""
        self._keep(orgs, published_ids)
        self._wake.set()

    def _keep(self, orgs: Iterable[str], published_ids: Iterable[int] = ()) -> None:
        """Keep work for the thread's next pass, without waking it."""
        with self._woken_lock:
            self._woken.update(orgs)
            self._published_ids.extend(published_ids)

    def _run(self) -> None:
        backoff, retry_soon = 0.0, False
        next_sweep = time.monotonic() + POLL_INTERVAL_SECONDS
        while True:
            if backoff:  # commits during an outage do not cut it short
                self._stopped.wait(backoff)
            else:
                wait = LOCK_RETRY_SECONDS if retry_soon else next_sweep - time.monotonic()
                # The fast path keeps what it published without waking this thread:
                # a pass every MARK_DELAY_SECONDS marks it in one UPDATE, before a
                # sweep would read those rows again from the log.
                self._wake.wait(min(max(wait, 0.0), MARK_DELAY_SECONDS))
            self._wake.clear()
            stopping = self._stopped.is_set()
            try:
                retry_soon = self._relay_notified()
                if stopping or time.monotonic() >= next_sweep:
                    self.relay_pending(min_age_seconds=0.0 if stopping else SWEEP_MIN_AGE_SECONDS)
                    next_sweep = time.monotonic() + POLL_INTERVAL_SECONDS
                backoff = 0.0
            except (RedisError, LockError, SQLAlchemyError) as exc:
                backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
                log.warning("event relay: %s; retrying in %.1f s", exc, backoff)
            except Exception:  # anything else backs off too: the thread must not end
                backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
                log.exception("event relay: pass failed; retrying in %.1f s", backoff)
            self._backing_off = bool(backoff)
            if stopping:
                return

    def _relay_notified(self) -> bool:
        """Mark what the fast path published, relay the woken orgs from the log;
        returns whether an org's lock was busy (the org is kept for a retry)."""
        with self._woken_lock:
            orgs, self._woken = self._woken, set()
            published_ids, self._published_ids = self._published_ids, []
            overdue = self._overdue_holds()
        busy: set[str] = set()
        try:
            orgs |= self._still_held(overdue)
            self._mark_published(published_ids)
            for org_id in orgs:
                if self.relay_org(org_id) is None:
                    busy.add(org_id)
        except BaseException:
            self._keep(orgs | overdue.keys(), published_ids)  # marking twice is harmless
            raise
        finally:
            self._keep(busy)  # retried after LOCK_RETRY_SECONDS
        return bool(busy)

    def _overdue_holds(self) -> dict[str, int]:
        """Per org, the highest seq held at least ``HOLD_GRACE_SECONDS`` ago (taken
        out of ``_holds``; the caller holds ``_woken_lock``)."""
        ripe_before = time.monotonic() - HOLD_GRACE_SECONDS
        overdue: dict[str, int] = {}
        for org_id, holds in list(self._holds.items()):
            ripe = [seq for since, seq in holds if since <= ripe_before]
            if not ripe:
                continue
            overdue[org_id] = max(ripe)
            young = [(since, seq) for since, seq in holds if since > ripe_before]
            if young:
                self._holds[org_id] = young
            else:
                del self._holds[org_id]
        return overdue

    def _still_held(self, overdue: dict[str, int]) -> set[str]:
        """The orgs of ``overdue`` whose held events are not out yet (one round trip)."""
        if not overdue:
            return set()
        pipeline = self._redis.pipeline(transaction=False)
        for org_id in overdue:
            pipeline.get(keys.relay_last_seq(org_id))
        lasts = pipeline.execute()
        return {
            org_id
            for (org_id, held), last in zip(overdue.items(), lasts, strict=True)
            if last is None or int(last) < held
        }

    def _publish_from_log(self, org_id: str, events: list["_Logged"]) -> list[int]:
        """Publish what of ``events`` (every unpublished event of the org from
        the first on, in seq order) is not out yet, and any held events that
        follow; the ids now out."""
        args = script_args(events, from_log=True)
        outcome = Outcome.of(self._publish_in_order(keys=script_keys(org_id), args=args))
        assert outcome is not None  # the log's word is never refused
        # Counted here, not when marked: a log batch may hold events another
        # process already put on the wire, and the script skips those.
        EVENTS_PUBLISHED.inc(outcome.published)
        return outcome.out(events)

    def _mark_published(self, ids: list[int]) -> None:
        """Mark ``ids`` published (again is harmless). On PostgreSQL one statement,
        compiled once, in autocommit on the driver's connection: the ORM's
        ``UPDATE … IN`` built anew took ~2 ms of this thread's CPU per batch, GIL
        time taken from the worker's jobs (each job's event is marked here)."""
        if not ids:
            return
        now = utcnow()
        with self._engine.connect() as connection:
            if connection.dialect.name == "postgresql" and _marked_on_driver(connection, ids, now):
                return
        # SQLite; or the driver failed (a dropped connection): SQLAlchemy raises its own error.
        with session_scope(self._engine) as session:
            session.execute(update(Event).where(col(Event.id).in_(ids)).values(published_at=now))
            session.commit()

    def relay_pending(self, *, min_age_seconds: float = 0.0) -> int:
        """Relay from the log every org with unpublished events (recorded at
        least ``min_age_seconds`` ago) whose lock is free; returns how many events
        were published or found published. Orgs are taken in random order, so
        relays sweeping at once split them."""
        with session_scope(self._engine) as session:
            statement = sa_select(col(Event.org_id)).where(col(Event.published_at).is_(None))
            if min_age_seconds:
                settled = utcnow() - timedelta(seconds=min_age_seconds)
                statement = statement.where(col(Event.at) < settled)
            orgs = list(session.execute(statement.distinct()).scalars())
        random.shuffle(orgs)
        return sum(self.relay_org(org_id) or 0 for org_id in orgs)

    def relay_org(self, org_id: str) -> int | None:
        """The log path: publish the org's unpublished events in ``seq`` order
        under its lock; returns how many were marked, or None when another
        relay holds the lock."""
        lock = self._redis.lock(keys.relay_lock(org_id), timeout=LOCK_TTL_SECONDS)
        if not lock.acquire(blocking=False):
            return None
        try:
            total = 0
            while (marked := self._relay_batch(org_id)) == BATCH_SIZE:
                total += marked
                lock.extend(LOCK_TTL_SECONDS, replace_ttl=True)  # a long backlog keeps it
            # A short batch was the last: an event committed after our read is
            # published by its own process (or retried there until we release).
            return total + marked
        finally:
            lock.release()

    def _relay_batch(self, org_id: str) -> int:
        """One batch: read (no transaction stays open while Redis is called),
        publish what is not out yet, then mark the batch published."""
        with session_scope(self._engine) as session:
            rows = session.connection().execute(_unpublished(org_id)).all()
            session.rollback()
        if not rows:
            return 0
        out = self._publish_from_log(
            org_id, [_Logged(row.seq, row.id, row_json(row)) for row in rows]
        )
        self._mark_published(out)
        return len(rows)


def _marked_on_driver(connection: Connection, ids: list[int], now: datetime) -> bool:
    """PostgreSQL: mark ``ids`` published in one autocommit statement; False
    (the connection invalidated) on a driver error."""
    try:
        with driver_autocommit(connection) as raw:
            raw.execute(_mark_sql(connection.dialect), {"ids": ids, "now": now})
    except psycopg.Error:
        connection.invalidate()
        return False
    return True


@functools.cache
def _mark_sql(dialect: Dialect) -> str:
    """``UPDATE events SET published_at = %(now)s WHERE id = ANY (%(ids)s)``, for the driver."""
    events = Event.__table__  # type: ignore[attr-defined]
    statement = (
        update(events)
        .where(events.c.id == any_(bindparam("ids", type_=ARRAY(events.c.id.type))))
        .values(published_at=bindparam("now", type_=events.c.published_at.type))
    )
    return str(statement.compile(dialect=dialect))


@dataclass(frozen=True, slots=True)
class _Logged:
    seq: int
    id: int
    json: str


def _unpublished(org_id: str) -> Any:
    """The org's oldest unpublished events, by ``seq`` (index ``ix_events_unpublished``).
    The stored handoff JSON is read as text and spliced in, never decoded."""
    return (
        sa_select(col(Event.id), col(Event.seq), *wire_columns())
        .where(col(Event.org_id) == org_id, col(Event.published_at).is_(None))
        .order_by(col(Event.seq))
        .limit(BATCH_SIZE)
    )
