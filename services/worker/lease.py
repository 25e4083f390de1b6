"""A Redis lease renewed while an assessment runs. If the worker dies, the
lease expires and the reconciler knows the job was abandoned.

It is a redis-py ``Lock`` (SET NX PX with a token), so a second run of the same
assessment cannot take, renew or drop the first run's lease.
"""

import logging
import threading
from types import TracebackType

from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from shared import keys
from shared.jobs import LEASE_TTL_SECONDS

log = logging.getLogger(__name__)


class LeaseHeld(Exception):
    """Another run of this assessment holds the lease and is still alive."""


class AssessmentLease:
    def __init__(self, redis: Redis, handoff_id: str, ttl_seconds: float = LEASE_TTL_SECONDS):
        self._ttl_seconds = ttl_seconds
        self._lock = Lock(redis, keys.assessment_lease(handoff_id), timeout=ttl_seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{handoff_id}", daemon=True)

    def __enter__(self) -> "AssessmentLease":
        if not self._lock.acquire(blocking=False):
            raise LeaseHeld(self._lock.name)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self._lock.release()
        except (LockError, RedisError) as error:
            log.warning(
                "could not drop lease %s (it expires by itself): %s", self._lock.name, error
            )

    def _renew(self) -> None:
        while not self._stop.wait(self._ttl_seconds / 3):
            try:
                self._lock.extend(self._ttl_seconds, replace_ttl=True)
            except (LockError, RedisError) as error:
                log.warning("could not renew lease %s: %s", self._lock.name, error)
