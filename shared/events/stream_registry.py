"""Who has event streams open, on every replica: one Redis sorted set per
(org, user) of stream ids, each scored by the time its entry expires.

A replica admits a stream with one Lua script (drop expired entries, count,
add if under the cap), so replicas opening streams at once cannot overshoot the
cap. A thread refreshes all of the process's open streams in one pipeline every
``refresh_seconds`` (pushing their expiry ``ttl_seconds`` ahead), and removes a
stream's entry as soon as it ends. Entries of a replica that died are no longer
refreshed: they stop counting at most ``ttl_seconds`` after its last refresh.

Scores are this process's clock (Unix seconds); replicas' clocks are assumed
to agree within a small fraction of ``ttl_seconds``. When Redis is unavailable
the stream is still registered locally and the next refresh writes it, so the
registry heals after an outage (or a Redis restarted empty).

Every stream is registered, whether or not a cap applies. A senior's or an
admin's stream (``person`` given) is also written to the org's presence set
(``shared.routing.presence``) in the same script, refreshed and removed with its
per-user entry, and each refresh re-records its person (``Presence.touch``).
"""

import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from shared.core import keys
from shared.routing.presence import Person, Presence, stream_member

log = logging.getLogger(__name__)

#: KEYS[1] the user's set, KEYS[2] (optional) the org's presence set; ARGV: now,
#: expires_at, cap, stream id, key ttl (s), presence member.
#: Returns 0 when the cap is reached (nothing added), else 1.
ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if KEYS[2] then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
return 1
"""


@dataclass(frozen=True)
class StreamSlot:
    stream_id: str
    key: str
    checked: bool = True  # False: admitted while Redis did not answer
    org_id: str = ""
    person: Person | None = None  # counted in the org's presence

    @property
    def presence_key(self) -> str:
        return keys.presence_streams(self.org_id)

    @property
    def presence_member(self) -> str:
        assert self.person is not None
        return stream_member(self.stream_id, self.person.id)


class StreamRegistry:
    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: float,
        refresh_seconds: float,
        presence: Presence | None = None,
    ) -> None:
        self._redis = redis
        self._presence = presence
        self._ttl = ttl_seconds
        self._refresh_every = refresh_seconds
        self._admit = redis.register_script(ADMIT)
        self._open: set[StreamSlot] = set()
        self._closed: list[StreamSlot] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-registry", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Remove this process's entries (best effort) and stop the thread."""
        with self._lock:
            self._closed.extend(self._open)
            self._open.clear()
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def admit(
        self, *, org_id: str, user_id: str, cap: int | None, person: Person | None = None
    ) -> StreamSlot | None:
        """Registers a new stream; None when the user already has ``cap`` open
        (``cap=None``: no cap). With ``person`` (and a ``presence``), the stream
        also makes them present. Blocking (one round trip, two with a person):
        call it from a worker thread. When Redis does not answer, the stream is
        admitted unchecked (``slot.checked`` is False) and written by the next refresh."""
        slot = StreamSlot(
            stream_id=uuid.uuid4().hex,
            key=keys.open_streams(org_id, user_id),
            org_id=org_id,
            person=person if self._presence is not None else None,
        )
        try:
            admitted = self._write_new(slot, cap)
        except RedisError as exc:
            log.warning("stream registry: Redis unavailable (%s); stream admitted unchecked", exc)
            slot = replace(slot, checked=False)
            admitted = True
        if not admitted:
            return None
        with self._lock:
            self._open.add(slot)
        return slot

    def release(self, slot: StreamSlot) -> None:
        """The stream ended: its entry is removed at once, by the registry's
        thread (this call never blocks, so it is safe on the event loop)."""
        with self._lock:
            if slot not in self._open:
                return
            self._open.discard(slot)
            self._closed.append(slot)
        self._wake.set()

    def count(self, *, org_id: str, user_id: str) -> int:
        """Open streams of one user on every replica, expired entries left out."""
        return int(self._redis.zcount(keys.open_streams(org_id, user_id), time.time(), "+inf"))

    def _write_new(self, slot: StreamSlot, cap: int | None) -> bool:
        now = time.time()
        args: list[str | float] = [
            now,
            now + self._ttl,
            cap or 2**31,
            slot.stream_id,
            self._key_ttl(),
        ]
        if slot.person is None or self._presence is None:
            return bool(self._admit(keys=[slot.key], args=args))
        self._presence.touch(org_id=slot.org_id, person=slot.person, now=now)
        return bool(
            self._admit(keys=[slot.key, slot.presence_key], args=[*args, slot.presence_member])
        )

    def _key_ttl(self) -> int:
        return int(self._ttl) + 1

    def _run(self) -> None:
        next_refresh = time.monotonic() + self._refresh_every
        while True:
            self._wake.wait(max(0.0, next_refresh - time.monotonic()))
            self._wake.clear()
            refresh = time.monotonic() >= next_refresh or self._stopped.is_set()
            try:
                self._sync(refresh=refresh and not self._stopped.is_set())
            except RedisError as exc:
                log.warning("stream registry: Redis unavailable (%s); retrying", exc)
            if refresh:
                next_refresh = time.monotonic() + self._refresh_every
            if self._stopped.is_set():
                return

    def _sync(self, *, refresh: bool) -> None:
        """One pipeline: remove ended streams' entries, then (when due) push every
        open stream's expiry ahead. Ended streams are put back on failure."""
        with self._lock:
            closed, self._closed = self._closed, []
            open_now = list(self._open) if refresh else []
        if not closed and not open_now:
            return
        now = time.time()
        expires_at = now + self._ttl
        present = [slot for slot in open_now if slot.person is not None]
        try:
            with self._redis.pipeline(transaction=False) as pipeline:
                for key, members in _entries(closed).items():
                    pipeline.zrem(key, *members)
                self._touch_people(pipeline, present, now)
                # One ZADD per key, not per stream: thousands of streams of a few
                # users cost one command each, and this thread holds the GIL
                # (the event loop's) while it packs them (5,000: 100 → 25 ms).
                for key, members in _entries(open_now).items():
                    pipeline.zadd(key, dict.fromkeys(members, expires_at))
                    pipeline.expire(key, self._key_ttl())
                pipeline.execute()
        except RedisError:
            with self._lock:
                self._closed.extend(closed)
            raise

    def _touch_people(self, pipeline: Pipeline, slots: list[StreamSlot], now: float) -> None:
        """Re-records each person with an open stream (before their entries are
        refreshed), so they are listed again after Redis lost its keys."""
        if self._presence is None:
            return
        for org_id, person in {(slot.org_id, slot.person) for slot in slots}:
            assert person is not None
            self._presence.touch(org_id=org_id, person=person, now=now, client=pipeline)


def _entries(slots: list[StreamSlot]) -> dict[str, list[str]]:
    """The slots' members by sorted set: each stream's per-user entry and, for a
    stream that makes its person present, its entry in the org's presence set."""
    members: dict[str, list[str]] = {}
    for slot in slots:
        members.setdefault(slot.key, []).append(slot.stream_id)
        if slot.person is not None:
            members.setdefault(slot.presence_key, []).append(slot.presence_member)
    return members
