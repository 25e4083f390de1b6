"""The trivial job of ``bench/assessments.py``: RQ's floor on the same worker class
and queue; and the gate that holds a waiting worker while a batch is queued behind
it. The worker imports both by dotted name (the bench puts the repository on the
worker's ``PYTHONPATH``)."""

import time

from rq import get_current_job

NOOP_FUNC = "bench.trivial_job.noop"
HOLD_FUNC = "bench.trivial_job.hold"


def noop() -> str:
    """Does nothing; returns what a finished assessment job returns."""
    return "ready"


def hold(key: str, timeout_s: float) -> str:
    """Blocks the worker until ``key`` is pushed to (``BLPOP``, one-second polls
    within the client's socket timeout) or ``timeout_s`` passes. Returns
    "released", or "timeout" (the bench then fails)."""
    job = get_current_job()
    assert job is not None, "hold runs as an RQ job"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if job.connection.blpop([key], timeout=1):
            return "released"
    return "timeout"
