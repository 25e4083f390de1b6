"""The claim lock: the fast path that settles claim races in Redis.

It is only an optimisation. The database update that follows is conditional
(``WHERE status = 'pending'``), so a claim stays correct when the lock expired
or Redis cannot be reached; in that case the lock reports ``None`` and the
caller goes straight to the database.
"""

import logging
import time

from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from shared.core import keys

log = logging.getLogger(__name__)

WAIT_POLL_SECONDS = 0.005


class ClaimLock:
    """``SET key token NX PX ttl`` on one handoff, released only by its owner."""

    def __init__(self, redis: Redis, handoff_id: str, *, ttl_seconds: float) -> None:
        self._ttl_seconds = ttl_seconds
        self._lock = Lock(redis, keys.claim_lock(handoff_id), timeout=ttl_seconds, blocking=False)
        self._held = False

    def try_acquire(self) -> bool | None:
        """True if this caller now holds the lock, False if another does,
        None if Redis could not answer."""
        try:
            self._held = bool(self._lock.acquire(blocking=False))
        except RedisError as exc:
            log.warning("claim lock unavailable, the database alone settles this claim: %s", exc)
            return None
        return self._held

    def wait_until_released(self) -> None:
        """Wait (at most the lock's TTL) for the holder to finish its claim."""
        deadline = time.monotonic() + self._ttl_seconds
        try:
            while self._lock.locked() and time.monotonic() < deadline:
                time.sleep(WAIT_POLL_SECONDS)
        except RedisError as exc:
            log.warning("claim lock unavailable while waiting: %s", exc)

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        try:
            self._lock.release()
        except (LockError, RedisError) as exc:
            # Expired or Redis gone: the TTL cleans up, the database already decided.
            log.warning("claim lock release failed: %s", exc)
