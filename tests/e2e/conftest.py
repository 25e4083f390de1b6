"""Fixtures that run real processes: a private redis-server and API replicas.

Each fixture stops what it started in its teardown, whatever the test did.
"""

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit.procs import Proc, free_port, redis_url, start_api, start_redis
from tests.e2e.pgbouncer import pgbouncer_in_front_of
from tests.e2e.redis_tls import TLSFiles, make_tls_files, start_tls_redis

StartReplica = Callable[[dict[str, str]], Proc]

#: The backend shapes to run, comma-separated (CI's Python 3.13 pass runs only
#: "redis-tls": that interpreter's ssl module is what differs).
BACKEND_SHAPES = os.environ.get("ESCALATIONS_TEST_BACKEND_SHAPES", "direct,pgbouncer,redis-tls")


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


@pytest.fixture(scope="session")
def redis_tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A test-made CA with server and client certificates."""
    return make_tls_files(tmp_path_factory.mktemp("redis-tls"))


@dataclass
class Backend:
    """The PostgreSQL database and the Redis that replicas and workers use."""

    shape: str  # "direct", "pgbouncer" or "redis-tls"
    database_url: str
    redis: Proc
    redis_url: str
    _restart: Callable[[], Proc]

    def restart_redis(self) -> Proc:
        """A new, empty server on the same port and transport (the caller stops it)."""
        self.redis = self._restart()
        return self.redis


@pytest.fixture(params=BACKEND_SHAPES.split(","))
def backend(
    request: pytest.FixtureRequest, postgres_url: str, process_logs: Path
) -> Iterator[Backend]:
    """The run's PostgreSQL database and a private Redis, in three shapes: both
    direct; the database through PgBouncer in transaction mode; Redis over TLS
    with client certificates. Migrations always run directly."""
    database_url = (
        request.getfixturevalue("pgbouncer_url") if request.param == "pgbouncer" else postgres_url
    )
    port = free_port()
    if request.param == "redis-tls":
        tls: TLSFiles = request.getfixturevalue("redis_tls_files")
        start = lambda: start_tls_redis(port, tls=tls, log_dir=process_logs)  # noqa: E731
        url = tls.url(port)
    else:
        start = lambda: start_redis(port, log_dir=process_logs)  # noqa: E731
        url = redis_url(port)
    chosen = Backend(
        shape=request.param, database_url=database_url, redis=start(), redis_url=url, _restart=start
    )
    try:
        yield chosen
    finally:
        chosen.redis.stop()
