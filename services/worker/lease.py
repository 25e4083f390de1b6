"""A Redis lease renewed while an assessment runs. If the worker dies, the
lease expires and the reconciler knows the job was abandoned.

It is a redis-py ``Lock`` (SET NX PX with a token), so a second run of the same
assessment cannot take, renew or drop the first run's lease.

One renewer thread per process renews every held lease a third of its TTL
after the last renewal; starting and joining a thread for each job cost more
than the job's own Redis calls.

A run that stored its assessment leaves its lease to expire (``done()``)
instead of dropping it, a Redis round trip saved: the reconciler reads a
lease only for a job RQ still shows as started, and a ready assessment is
never run or re-enqueued again (a duplicate job meanwhile is skipped, as it
would be anyway).
"""

import logging
import math
import os
import threading
import time
from types import TracebackType

from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from shared.core import keys
from shared.core.jobs import LEASE_TTL_SECONDS

log = logging.getLogger(__name__)


class LeaseHeld(Exception):
    """Another run of this assessment holds the lease and is still alive."""


class AssessmentLease:
    def __init__(self, redis: Redis, handoff_id: str, ttl_seconds: float = LEASE_TTL_SECONDS):
        self.ttl_seconds = ttl_seconds
        # Not thread-local: the renewer thread extends the token this thread took
        # (with redis-py's default, another thread has no token to extend).
        self._lock = Lock(
            redis, keys.assessment_lease(handoff_id), timeout=ttl_seconds, thread_local=False
        )
        self._done = False

    def __enter__(self) -> "AssessmentLease":
        if not self._lock.acquire(blocking=False):
            raise LeaseHeld(self._lock.name)
        _renewer().add(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _renewer().remove(self)  # returns once no renewal of it is under way
        if self._done and exc is None:
            return  # it expires by itself within its TTL
        try:
            self._lock.release()
        except (LockError, RedisError) as error:
            log.warning(
                "could not drop lease %s (it expires by itself): %s", self._lock.name, error
            )

    def done(self) -> None:
        """The assessment is stored: on a clean exit the lease is left to expire."""
        self._done = True

    def renew(self) -> None:
        try:
            self._lock.extend(self.ttl_seconds, replace_ttl=True)
        except (LockError, RedisError) as error:
            log.warning("could not renew lease %s: %s", self._lock.name, error)


class _Renewer:
    """The process's lease renewer: a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._due: dict[AssessmentLease, float] = {}  # lease -> next renewal (monotonic)
        self._changed = threading.Condition()
        #: Held while leases are renewed, so ``remove`` never races a renewal.
        self._renewing = threading.Lock()
        self._thread: threading.Thread | None = None
        #: When the thread wakes next by itself (monotonic; inf: only when notified).
        self._wakes_at = math.inf

    def add(self, lease: AssessmentLease) -> None:
        """Book ``lease``'s first renewal. The thread is woken only when that is
        due before it would wake anyway: one job's lease after another's (the
        same TTL) never is, and waking it per job cost a thread switch per job."""
        with self._changed:
            due = time.monotonic() + lease.ttl_seconds / 3
            self._due[lease] = due
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
                self._thread.start()
            if due < self._wakes_at:
                self._wakes_at = due  # the thread books its own wake-up again when it runs
                self._changed.notify()

    def remove(self, lease: AssessmentLease) -> None:
        with self._renewing, self._changed:
            self._due.pop(lease, None)

    def _run(self) -> None:
        while True:
            due = self._take_due()
            with self._renewing:  # no ``remove`` until these are renewed
                for lease in due:
                    if lease in self._due:  # not released meanwhile
                        lease.renew()

    def _take_due(self) -> list[AssessmentLease]:
        """Waits until some lease is due; returns those, their next renewal booked."""
        with self._changed:
            while True:
                now = time.monotonic()
                due = [lease for lease, at in self._due.items() if at <= now]
                if due:
                    for lease in due:
                        self._due[lease] = now + lease.ttl_seconds / 3
                    return due
                self._wakes_at = min(self._due.values(), default=math.inf)
                self._changed.wait(None if self._wakes_at == math.inf else self._wakes_at - now)


_process_renewer: _Renewer | None = None
_renewer_guard = threading.Lock()


def _renewer() -> _Renewer:
    global _process_renewer
    with _renewer_guard:
        if _process_renewer is None:
            _process_renewer = _Renewer()
        return _process_renewer


def _forget_in_child() -> None:
    """A forked work horse has no renewer thread: it starts its own."""
    global _process_renewer, _renewer_guard
    _process_renewer = None
    _renewer_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
