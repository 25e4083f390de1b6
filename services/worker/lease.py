"""A Redis lease renewed while an assessment runs. If the worker dies, the
lease expires and the reconciler knows the job was abandoned."""

import logging
import threading
from types import TracebackType

from redis import Redis
from redis.exceptions import RedisError

from shared import keys
from shared.jobs import LEASE_TTL_SECONDS

log = logging.getLogger(__name__)


class AssessmentLease:
    def __init__(self, redis: Redis, handoff_id: str, ttl_seconds: float = LEASE_TTL_SECONDS):
        self._redis = redis
        self._key = keys.assessment_lease(handoff_id)
        self._ttl_ms = int(ttl_seconds * 1000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{handoff_id}", daemon=True)

    def __enter__(self) -> "AssessmentLease":
        self._redis.set(self._key, "1", px=self._ttl_ms)
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
            self._redis.delete(self._key)
        except RedisError as error:
            log.warning("could not drop lease %s (it expires by itself): %s", self._key, error)

    def _renew(self) -> None:
        while not self._stop.wait(self._ttl_ms / 3000):
            try:
                self._redis.pexpire(self._key, self._ttl_ms)
            except RedisError as error:
                log.warning("could not renew lease %s: %s", self._key, error)
