"""Fixtures that run real processes: a private redis-server and API replicas.

Each fixture stops what it started in its teardown, whatever the test did.
"""

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.pgbouncer import pgbouncer_in_front_of
from tests.e2e.procs import Proc, free_port, start_api, start_redis

StartReplica = Callable[[dict[str, str]], Proc]


@pytest.fixture
def process_logs(tmp_path: Path) -> Path:
    """Where this test's processes write their output."""
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
def private_redis(process_logs: Path) -> Iterator[Proc]:
    """A fresh in-memory redis-server on a free port; the test may kill it."""
    proc = start_redis(free_port(), log_dir=process_logs)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def start_replica(process_logs: Path) -> Iterator[StartReplica]:
    """``start_replica(env)`` starts an ``escalations api`` on a free port and
    returns it once /readyz answers 200; all are stopped at teardown."""
    started: list[Proc] = []

    def start(env: dict[str, str]) -> Proc:
        proc = start_api(free_port(), env=env, log_dir=process_logs)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_url: str) -> Iterator[str]:
    """The run's PostgreSQL database through a private PgBouncer in transaction mode."""
    workdir = Path(tempfile.mkdtemp(prefix="escalations-pgbouncer-"))
    try:
        with pgbouncer_in_front_of(postgres_url, workdir=workdir) as url:
            yield url
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["postgres", "pgbouncer"])
def served_database_url(request: pytest.FixtureRequest) -> str:
    """The run's PostgreSQL database as replicas reach it: directly, or through
    PgBouncer in transaction mode (migrations always run directly)."""
    return request.getfixturevalue(f"{request.param}_url")
