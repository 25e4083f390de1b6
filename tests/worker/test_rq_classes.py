"""The service's RQ workers stop within seconds, whichever way their command
listener's thread and the stop interleave.

RQ's own listener polls every 60 s: when the thread has already handled the
``UNSUBSCRIBE`` reply before it is told to stop, it waits out that poll, and a
burst worker took a minute to quit (CI lost a test with a 15 s deadline to it).
The test makes that interleaving certain instead of waiting for a loaded machine
to produce it."""

import time

import pytest
from redis import Redis
from rq import Queue
from rq.worker.base import BaseWorker

from services.worker.rq_classes import WORKER_CLASSES

#: A worker that stops within this many seconds is prompt (RQ's own: 60).
PROMPT_SECONDS = 5.0


def _handled_unsubscribe_first(worker_class: type[BaseWorker]) -> type[BaseWorker]:
    class Worker(worker_class):  # type: ignore[valid-type,misc]
        def unsubscribe(self) -> None:
            # Wait until the listener thread has read the UNSUBSCRIBE reply
            # (it then polls for a new subscription), and only then stop it.
            assert self.pubsub is not None
            self.pubsub.unsubscribe()
            deadline = time.monotonic() + PROMPT_SECONDS
            while self.pubsub.subscribed:
                assert time.monotonic() < deadline, "the listener never read its UNSUBSCRIBE"
                time.sleep(0.01)
            super().unsubscribe()

    return Worker


@pytest.mark.parametrize("kind", ["simple", "fork"])
def test_a_burst_worker_quits_within_seconds_after_its_listener_unsubscribed(
    redis: Redis, kind: str
) -> None:
    worker_class = _handled_unsubscribe_first(WORKER_CLASSES[kind])
    worker = worker_class([Queue("prompt-stop", connection=redis)], connection=redis)
    started = time.monotonic()
    worker.work(burst=True)
    assert time.monotonic() - started < PROMPT_SECONDS
