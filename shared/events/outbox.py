"""The outbox: events written with their state change, and relayed to Redis.

Recording: :func:`record_event` adds the event (and its webhook deliveries, and
makes the handoff's Slack messages due) in the caller's transaction and keeps it
in ``session.info``.

Waking: after a commit through an engine with a started :class:`Outbox`, the
committed events (their JSON built in the committing thread) go to that
process's relay, and the webhook and Slack dispatchers wake.

Relaying: every publish goes through one Redis script that keeps, per org, the
last ``seq`` published: it publishes only events after it, and in order, so no
event leaves twice or before an earlier one, whichever processes relay the org.
The fast path publishes a commit's events straight from memory (one round trip,
no lock, no read). When the script finds a gap (an earlier event of the org not
out yet) or does not know the org, the org goes the log path: under the org's
Redis lock, its unpublished events are read in ``seq`` order and published from
the oldest. Different orgs relay in parallel in any process. A poll every
second sweeps every org with unpublished events (a process that died between
commit and publish). Published events are then marked in the database. When
Redis or the database is down the relay backs off: events are delayed, never
lost. If Redis loses the script's state, the log path may publish an event
twice; streams drop duplicates by ``seq``.
"""

import functools
import logging
import random
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import Engine, bindparam, func, insert, inspect, literal_column, update
from sqlalchemy import event as sa_event
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col

from shared.auth.tokens import Principal
from shared.core import keys
from shared.core.db import dialect_insert, session_scope
from shared.core.metrics import EVENTS_PUBLISHED
from shared.core.request_context import REQUEST_ID
from shared.core.settings import Settings
from shared.core.timeutil import utcnow
from shared.events.models import Event, EventType, OrgEventCounter
from shared.events.record import event_json, row_json, wire_columns
from shared.handoffs.models import Handoff
from shared.handoffs.views import handoff_summary
from shared.slack.sync import SLACK_DUE, SlackDispatcher, note_event
from shared.webhooks.deliveries import DELIVERIES_WRITTEN, create_deliveries, delivery_insert
from shared.webhooks.dispatch import DeliveryDispatcher

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

#: The script's per-org "last published seq" outlives an idle org this long.
LAST_SEQ_TTL_SECONDS = 7 * 24 * 3600

#: ``session.info`` key: the events the transaction wrote.
EVENTS_WRITTEN = "outbox_events_written"


# --- recording ---------------------------------------------------------------------


def record_event(
    session: Session,
    *,
    handoff: Handoff,
    type: EventType,
    actor: Principal | None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Write the event for ``handoff``'s new state in the session's transaction.
    The event carries the slim view (``HandoffSummary``), whatever the size of
    the transcript, tried steps and notes.

    The caller commits. The per-org counter row stays locked until then, so an
    org's events commit in ``seq`` order and a replay after ``seq`` N never
    misses an event that commits later with a smaller number. The webhook
    deliveries the event calls for are written in the same transaction. On
    PostgreSQL the counter, the event and its deliveries are one statement
    (the counter row is locked for that round trip and the commit only).
    """
    event = Event(
        org_id=handoff.org_id,
        seq=0,  # numbered below, from the org's counter
        type=type.value,
        handoff_id=handoff.id,
        actor_id=actor.user_id if actor else None,
        actor_name=actor.name if actor else None,
        at=utcnow(),
        handoff=handoff_summary(handoff),
        request_id=REQUEST_ID.get(),
        data=data,
    )
    bind = session.connection()
    if bind.dialect.name == "postgresql":
        _insert_in_one_statement(session, event)
    else:
        event.seq = _next_seq(session, handoff.org_id)
        session.add(event)
        create_deliveries(
            session, org_id=event.org_id, event_seq=event.seq, event_type=event.type, at=event.at
        )
    note_event(
        session,
        org_id=event.org_id,
        handoff_id=handoff.id,
        team_id=handoff.escalation_team_id,
        event_type=event.type,
        at=event.at,
    )
    session.info.setdefault(EVENTS_WRITTEN, []).append((event.org_id, event))
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


def _insert_in_one_statement(session: Session, event: Event) -> None:
    """PostgreSQL: the counter, the event and its deliveries in one statement;
    fills in ``event.id`` and ``event.seq``. The event is not in the session
    (it never changes after this), so a commit never expires it."""
    row = (  # session.execute: pending changes flush first, before the counter is locked
        session.execute(
            _event_statement(),
            {
                "org_id": event.org_id,
                "type": event.type,
                "handoff_id": event.handoff_id,
                "actor_id": event.actor_id,
                "actor_name": event.actor_name,
                "at": event.at,
                "handoff": event.handoff,
                "request_id": event.request_id,
                "data": event.data,
            },
        ).one()
    )
    event.id, event.seq = row.id, row.seq
    if row.deliveries:
        session.info[DELIVERIES_WRITTEN] = True


@functools.cache
def _event_statement() -> Any:
    """``WITH counter AS (upsert … RETURNING), event AS (INSERT … SELECT FROM
    counter RETURNING), delivery AS (INSERT … SELECT FROM event, the org's
    subscriptions) SELECT id, seq, deliveries`` (built once: building it costs
    more than running it)."""
    counters = OrgEventCounter.__table__  # type: ignore[attr-defined]
    events = Event.__table__  # type: ignore[attr-defined]
    org_id = bindparam("org_id", type_=counters.c.org_id.type)
    counter = (
        postgresql.insert(counters)
        .values(org_id=org_id, last_seq=1)
        .on_conflict_do_update(
            index_elements=[counters.c.org_id], set_={"last_seq": counters.c.last_seq + 1}
        )
        .returning(counters.c.last_seq)
        .cte("counter")
    )
    values = ["type", "handoff_id", "actor_id", "actor_name", "at", "handoff", "request_id", "data"]
    written = (
        insert(events)
        .from_select(
            ["org_id", "seq", *values],
            sa_select(
                org_id,
                counter.c.last_seq,
                *(bindparam(name, type_=events.c[name].type) for name in values),
            ),
        )
        .returning(events.c.id, events.c.seq, events.c.type, events.c.at)
        .cte("event")
    )
    deliveries = (
        delivery_insert(
            org_id=org_id,
            event_seq=written.c.seq,
            event_type=written.c.type,
            at=written.c.at,
            source=written,
        )
        .returning(literal_column("1"))
        .cte("delivery")
    )
    return sa_select(
        written.c.id,
        written.c.seq,
        sa_select(func.count()).select_from(deliveries).scalar_subquery().label("deliveries"),
    )


# --- waking ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Committed:
    """A committed event as the fast path publishes it."""

    org_id: str
    seq: int
    id: int
    json: str


#: Per engine: the started outbox its commits wake.
_outboxes: "weakref.WeakKeyDictionary[Engine, Outbox]" = weakref.WeakKeyDictionary()


def _after_commit(session: OrmSession) -> None:
    events: list[tuple[str, Event]] = session.info.pop(EVENTS_WRITTEN, [])
    deliveries = session.info.pop(DELIVERIES_WRITTEN, False)
    slack_due = session.info.pop(SLACK_DUE, False)
    if not (events or deliveries or slack_due) or session.bind is None:
        return
    outbox = _outboxes.get(session.bind.engine)
    if outbox is None:
        return
    if slack_due:
        outbox.slack.notify()
    committed, expired = [], set()
    for org_id, written in events:
        if inspect(written).expired_attributes:  # a session that expires on commit
            expired.add(org_id)
        else:
            committed.append(
                Committed(written.org_id, written.seq, written.id or 0, event_json(written))
            )
    outbox.committed(committed, expired, deliveries=deliveries)


def _after_rollback(session: OrmSession, _previous: Any) -> None:
    """A rolled-back event must never be published (its ``seq`` will be reused)."""
    session.info.pop(EVENTS_WRITTEN, None)
    session.info.pop(DELIVERIES_WRITTEN, None)
    session.info.pop(SLACK_DUE, None)


class Outbox:
    """One process's outbox threads: the event relay, the webhook dispatcher and
    the Slack dispatcher, woken by commits through ``engine`` (any session) while started."""

    def __init__(self, *, engine: Engine, redis: Redis, settings: Settings) -> None:
        self._engine = engine
        self.relay = EventRelay(engine=engine, redis=redis)
        self.dispatcher = DeliveryDispatcher(engine=engine, redis=redis, settings=settings)
        self.slack = SlackDispatcher(engine=engine, redis=redis)

    def start(self) -> None:
        if not sa_event.contains(OrmSession, "after_commit", _after_commit):
            sa_event.listen(OrmSession, "after_commit", _after_commit)
            sa_event.listen(OrmSession, "after_soft_rollback", _after_rollback)
        _outboxes[self._engine] = self
        self.relay.start()
        self.dispatcher.start()
        self.slack.start()

    def stop(self) -> None:
        """Stop waking; the relay publishes what is pending (best effort)."""
        _outboxes.pop(self._engine, None)
        self.slack.stop()
        self.dispatcher.stop()
        self.relay.stop()

    def committed(
        self, events: list[Committed], orgs: Iterable[str] = (), *, deliveries: bool = False
    ) -> None:
        """Called in the committing thread after a commit that wrote ``events``
        (and events of ``orgs`` to read from the log), or ``deliveries`` due now,
        or both. Never raises."""
        if events:
            self.relay.publish_now(events)
        if orgs:
            self.relay.notify(orgs)
        if deliveries:
            self.dispatcher.notify()


# --- relaying ----------------------------------------------------------------------

#: KEYS[1]: the org's last published seq. ARGV: channel, TTL of KEYS[1], whether
#: the caller read every unpublished event of the org from the log ("1"), then
#: seq, JSON pairs in seq order. Publishes the events after the last one, in
#: order; without the log's word, refuses (-1) when the last is unknown or an
#: event's predecessor is neither out nor among them. Returns how many it published.
PUBLISH_IN_ORDER = """
local last = tonumber(redis.call('GET', KEYS[1]))
if ARGV[3] ~= '1' then
  if last == nil then
    return -1
  end
  local next_seq = last + 1
  for i = 4, #ARGV, 2 do
    local seq = tonumber(ARGV[i])
    if seq > next_seq then
      return -1
    end
    next_seq = math.max(next_seq, seq + 1)
  end
end
local published = 0
for i = 4, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if last == nil or seq > last then
    redis.call('PUBLISH', ARGV[1], ARGV[i + 1])
    last = seq
    published = published + 1
  end
end
if last ~= nil then
  redis.call('SET', KEYS[1], last, 'EX', ARGV[2])
end
return published
"""


class EventRelay:
    """Publishes on a thread: committed events at once, notified orgs from the
    log, and every org with unpublished events every ``POLL_INTERVAL_SECONDS``."""

    def __init__(self, *, engine: Engine, redis: Redis) -> None:
        self._engine = engine
        self._redis = redis
        self._publish_in_order = redis.register_script(PUBLISH_IN_ORDER)
        self._published_ids: list[int] = []  # to mark in the database
        self._woken: set[str] = set()
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
        in one script call, no lock, no read. What it cannot publish in order,
        or at all (Redis down: not tried while the relay backs off), goes to the
        relay thread's log path; what it published is marked within
        ``MARK_DELAY_SECONDS``. Never raises."""
        if not events:
            return
        if self._backing_off:
            self.notify({event.org_id for event in events})
            return
        try:
            refused, published_ids = self._publish_committed(events)
        except RedisError:
            self.notify({event.org_id for event in events})
            return
        self._keep(refused, published_ids)
        if refused:
            self._wake.set()

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
                    self.relay_pending()
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
        busy: set[str] = set()
        try:
            self._mark_published(published_ids)
            for org_id in orgs:
                if self.relay_org(org_id) is None:
                    busy.add(org_id)
        except BaseException:
            self._keep(orgs, published_ids)  # marking twice is harmless
            raise
        finally:
            self._keep(busy)  # retried after LOCK_RETRY_SECONDS
        return bool(busy)

    def _publish_committed(self, committed: list[Committed]) -> tuple[set[str], list[int]]:
        """Each org's events in one script call. Returns the orgs it could not
        publish in order (for the log path) and the ids of those it did."""
        by_org: dict[str, list[Committed]] = {}
        for item in committed:
            by_org.setdefault(item.org_id, []).append(item)
        refused, published_ids = set(), []
        for org_id, events in by_org.items():
            events.sort(key=lambda item: item.seq)
            if self._publish(org_id, events, from_log=False) < 0:
                refused.add(org_id)
            else:
                published_ids += [item.id for item in events]
        return refused, published_ids

    def _publish(self, org_id: str, events: list[Any], *, from_log: bool) -> int:
        """How many of ``events`` this call put on the wire (-1: refused)."""
        args: list[Any] = [keys.EVENTS_CHANNEL, LAST_SEQ_TTL_SECONDS, int(from_log)]
        for item in events:
            args += [item.seq, item.json]
        published = int(self._publish_in_order(keys=[keys.relay_last_seq(org_id)], args=args))
        # Counted here, not when marked: a log batch may hold events another
        # process already put on the wire, and the script skips those.
        EVENTS_PUBLISHED.inc(max(published, 0))
        return published

    def _mark_published(self, ids: list[int]) -> None:
        if not ids:
            return
        with session_scope(self._engine) as session:
            session.execute(
                update(Event).where(col(Event.id).in_(ids)).values(published_at=utcnow())
            )
            session.commit()

    def relay_pending(self) -> int:
        """Relay from the log every org with unpublished events whose lock is
        free; returns how many events were published or found published. Orgs
        are taken in random order, so relays sweeping at once split them."""
        with session_scope(self._engine) as session:
            statement = sa_select(col(Event.org_id)).where(col(Event.published_at).is_(None))
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
        self._publish(org_id, [_Logged(row.seq, row_json(row)) for row in rows], from_log=True)
        self._mark_published([row.id for row in rows])
        return len(rows)


@dataclass(frozen=True, slots=True)
class _Logged:
    seq: int
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
