"""The trivial job of ``bench/assessments.py``: RQ's floor on the same worker class
and queue. The worker imports it by dotted name (the bench puts the repository on
the worker's ``PYTHONPATH``)."""

NOOP_FUNC = "bench.trivial_job.noop"


def noop() -> str:
    """Does nothing; returns what a finished assessment job returns."""
    return "ready"
