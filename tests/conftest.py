"""Fixtures on real services: Redis and both SQLite and PostgreSQL (a database
created for this run, dropped at the end).

Redis is a private ``redis-server`` started by each test process (each
pytest-xdist worker) on a free port, so parallel runs and workers and the
machine's own Redis never see each other's keys; the PostgreSQL database is
per process too.

Environment knobs (defaults suit this repo's CI machine):
  ESCALATIONS_TEST_REDIS_URL   use this Redis instead of a private server
  ESCALATIONS_TEST_PG_URL      postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

import gc
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.auth.tokens import issue_token
from shared.core.db import make_engine
from shared.core.migrate import upgrade_to_head
from shared.core.models import Role
from shared.core.redis_client import make_redis
from shared.core.settings import DEV_JWT_SECRET, Settings
from testkit import log_leaks
from testkit.fastapi_schemas import reuse_field_schemas
from testkit.pg import fresh_database
from testkit.procs import GENEROUS_LIMITS, Proc, free_port, start_redis
from testkit.samples import handoff_body  # noqa: F401  (re-exported for test modules)

TEST_SECRET = log_leaks.register_secret("test-secret-" + "0123456789" * 4)
log_leaks.register_secret(DEV_JWT_SECRET)
#: Set by pytest_configure (before test modules are imported).
REDIS_URL = os.environ.get("ESCALATIONS_TEST_REDIS_URL", "")
PG_ADMIN_URL = os.environ.get(
    "ESCALATIONS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
#: Emptied before each test, in this order (rows before the rows they reference).
TABLES = (
    "api_keys",
    "slack_messages",
    "slack_links",
    "slack_connections",
    "webhook_deliveries",
    "webhook_event_types",
    "webhooks",
    "events",
    "org_event_counters",
    "idempotency_keys",
    "handoffs",
    "escalation_levels",
    "escalation_policies",
    "team_domains",
    "team_members",
    "teams",
    "last_assignments",
    "org_retention",
    "audit_log",
    "people",
    "redaction_settings",
)


_private_redis: Proc | None = None


def pytest_configure(config: pytest.Config) -> None:
    global REDIS_URL, _private_redis
    _catch_log_leaks()
    reuse_field_schemas()
    if REDIS_URL or _is_xdist_controller(config):
        return
    log_dir = Path(tempfile.mkdtemp(prefix="escalations-test-redis-"))
    _private_redis = start_redis(free_port(), log_dir=log_dir)
    REDIS_URL = f"redis://127.0.0.1:{_private_redis.port}/0"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything imported so far lives until the process ends: move it out of the
    cyclic garbage collector's sight. Each full collection scanned it all again
    (~0.35 s a time, every thread stopped, ~29 times in 230 API tests)."""
    gc.collect()
    gc.freeze()


def _is_xdist_controller(config: pytest.Config) -> bool:
    """The process that hands tests to xdist workers runs none itself."""
    workers = config.getoption("numprocesses", default=None)
    return bool(workers) and not hasattr(config, "workerinput")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _private_redis is not None:
        _private_redis.stop()


def _catch_log_leaks() -> None:
    """Every record of the test process passes ``log_leaks.LeakCatcher``; INFO
    and up are emitted (the root logger's default, WARNING, would hide the
    access log)."""
    root = logging.getLogger()
    root.addHandler(log_leaks.LeakCatcher())
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    # The tests' own HTTP clients log every URL they ask for at INFO: that is a
    # test speaking (URLs with tokens in them on purpose), not the service.
    for client_library in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(client_library).setLevel(logging.WARNING)


@pytest.fixture(autouse=True)
def no_token_in_any_log() -> Iterator[None]:
    """Fails the test when a JWT or a known secret reached a log during it: a
    record of this process or the log of a process it started (testkit/log_leaks.py)."""
    yield
    found = log_leaks.take()
    if found:
        pytest.fail("a token or secret reached a log:\n" + "\n".join(found), pytrace=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, migrated, for this test run."""
    with fresh_database(PG_ADMIN_URL, prefix="escalations_test") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "escalations.db"
    url = f"sqlite:///{path}"
    upgrade_to_head(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    empty_tables(engine)
    yield engine
    engine.dispose()


def empty_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in TABLES:
            connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = make_redis(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, redis_url=REDIS_URL, jwt_secret=TEST_SECRET, **GENEROUS_LIMITS
    )


@pytest.fixture
def client(settings: Settings, engine: Engine, redis: Redis) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


TokenFactory = Callable[..., dict[str, str]]


@pytest.fixture
def auth() -> TokenFactory:
    """``auth("senior", sub="u-42", name="Dana Senior", org="acme")`` → headers."""

    def headers(
        role: str, *, sub: str | None = None, name: str | None = None, org: str = "acme"
    ) -> dict[str, str]:
        token = issue_token(
            secret=TEST_SECRET,
            sub=sub or f"{role}-1",
            name=name or f"{role.title()} One",
            role=Role(role),
            org=org,
            ttl=timedelta(hours=1),
        )
        return {"Authorization": f"Bearer {token}"}

    return headers
