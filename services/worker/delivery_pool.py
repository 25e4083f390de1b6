"""A notifications worker's pool of webhook tries: many at once, each a network wait.

RQ's worker takes ``deliver_webhook`` jobs one at a time; in a process that
serves ``notifications`` the job does not send, it hands the try to this pool
(:meth:`DeliveryPool.submit`) and returns, so one receiver that never answers
holds one of ``webhook_concurrency`` threads for at most the try's deadline,
not the process. Fairness between orgs and receivers is not decided here but
before a job exists: the dispatcher enqueues no more than the per-org and
per-receiver caps allow in flight (``shared.webhooks.tries.claim_due``).

While a try is in the pool its lease (``keys.delivery_try_lease``, a TTL above
the try's deadline) tells the reconciler the finished job's try is still being
sent; if the process dies the lease expires and the row is made due again.
"""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class PoolFull(Exception):
    """No thread became free within the wait the caller allowed."""


class DeliveryPool:
    """``size`` threads; :meth:`submit` waits for a free one (back-pressure on
    the RQ loop that feeds it)."""

    def __init__(self, *, size: int) -> None:
        self.size = size
        self._free = threading.BoundedSemaphore(size)
        self._idle = threading.Condition()
        self._running = 0
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhook-try")

    def submit(self, run: Callable[[], object], *, wait: float) -> None:
        """Runs ``run`` on a pool thread once one is free; raises
        :class:`PoolFull` if none is within ``wait`` seconds. ``run``'s
        exceptions are logged, never raised here."""
        if not self._free.acquire(timeout=wait):
            raise PoolFull(f"all {self.size} webhook try threads busy for {wait:g} s")
        with self._idle:
            self._running += 1
        try:
            self._executor.submit(self._run, run)
        except BaseException:
            self._done()
            raise

    @property
    def running(self) -> int:
        with self._idle:
            return self._running

    def drain(self, timeout: float | None = None) -> bool:
        """Waits until no try is running; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

    def stop(self) -> None:
        """Lets the tries in flight finish (each is bounded by its deadline)."""
        self._executor.shutdown(wait=True)

    def _run(self, run: Callable[[], object]) -> None:
        try:
            run()
        except Exception:  # a bug costs this try (the reconciler retries it), not the thread
            log.exception("webhook try failed unexpectedly")
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._running -= 1
            self._idle.notify_all()
        self._free.release()
