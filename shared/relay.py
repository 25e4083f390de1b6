"""The outbox relay: publishes committed events to Redis, oldest first, and
marks them published. Runs on a thread in every API and worker process.

A commit that wrote events wakes the relay at once (``notify``); a slow poll
also catches events whose process died before relaying them. A Redis lock
makes one relay publish at a time, so each org's events reach pub/sub in
``seq`` order. When Redis or the database is down the relay backs off and
tries again: events are delayed, never lost. A crash between publishing and
marking can publish an event twice; streams drop duplicates by ``seq``.
"""

import logging
import threading

from redis import Redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import Engine, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from shared import keys
from shared.db import session_scope
from shared.events import event_json
from shared.metrics import EVENTS_PUBLISHED
from shared.models import Event
from shared.timeutil import utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 500
POLL_INTERVAL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 5.0
LOCK_TTL_SECONDS = 10.0
LOCK_WAIT_SECONDS = 5.0
LOCK_POLL_SECONDS = 0.002


class EventRelay:
    def __init__(self, *, engine: Engine, redis: Redis) -> None:
        self._engine = engine
        self._redis = redis
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Relay what is pending (best effort), then stop the thread."""
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=LOCK_WAIT_SECONDS + 5)

    def notify(self) -> None:
        """Called after a commit that wrote events."""
        self._wake.set()

    def _run(self) -> None:
        backoff = 0.0
        while True:
            self._wake.wait(backoff or POLL_INTERVAL_SECONDS)
            self._wake.clear()
            try:
                self.relay_pending()
                backoff = 0.0
            except (RedisError, LockError, SQLAlchemyError) as exc:
                backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
                log.warning("event relay: %s; retrying in %.1f s", exc, backoff)
            if self._stopped.is_set():
                return

    def relay_pending(self) -> int:
        """Publish every unpublished event; returns how many were published."""
        lock = self._redis.lock(
            keys.RELAY_LOCK,
            timeout=LOCK_TTL_SECONDS,
            sleep=LOCK_POLL_SECONDS,
            blocking_timeout=LOCK_WAIT_SECONDS,
        )
        if not lock.acquire():
            return 0  # the holder relays until nothing is left, ours included
        try:
            total = 0
            while published := self._relay_batch():
                total += published
                lock.extend(LOCK_TTL_SECONDS, replace_ttl=True)  # a long backlog keeps it
            return total
        finally:
            lock.release()

    def _relay_batch(self) -> int:
        """One batch: read (no transaction stays open while Redis is called),
        publish in order, then mark published."""
        with session_scope(self._engine) as session:
            statement = (
                select(Event)
                .where(col(Event.published_at).is_(None))
                .order_by(col(Event.id))
                .limit(BATCH_SIZE)
            )
            payloads = [(event.id, event_json(event)) for event in session.exec(statement)]
            session.rollback()
        if not payloads:
            return 0
        with self._redis.pipeline(transaction=False) as pipeline:
            for _, payload in payloads:
                pipeline.publish(keys.EVENTS_CHANNEL, payload)
            pipeline.execute()
        ids = [event_id for event_id, _ in payloads]
        with session_scope(self._engine) as session:
            session.execute(
                update(Event).where(col(Event.id).in_(ids)).values(published_at=utcnow())
            )
            session.commit()
        EVENTS_PUBLISHED.inc(len(payloads))
        return len(payloads)
