"""Assessment retries under faults, with real processes: a retry scheduled with
back-off must still run after a Redis outage, and after a ``kill -9`` of the
worker process alone (not its process group), nothing of that worker is left
running and a new worker runs the retry.

Both once failed: RQ's scheduler is a forked child that died on the outage and
was not restarted while its 61 s lock outlived it (and the reconciler counted a
scheduled job as live forever); and a killed worker's scheduler child lived on,
re-parented to PID 1, holding that lock.
"""

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from redis import Redis
from redis.exceptions import RedisError

from shared.auth.tokens import issue_token
from shared.core.models import Role
from shared.core.redis_client import make_redis
from testkit.openai_stub import OpenAIStub
from testkit.procs import (
    Proc,
    alive,
    api_env,
    base_url,
    descendants,
    free_port,
    poll,
    redis_url,
    start_redis,
)
from testkit.workers import start_worker
from tests.conftest import TEST_SECRET, handoff_body
from tests.e2e.conftest import StartReplica

pytestmark = pytest.mark.slow

RETRY_AFTER_SECONDS = 2
#: The retry's back-off, one pass of the due-retry mover (1 s) and a margin; RQ's
#: own scheduler needed its lock to expire (61 s) and a 10-minute maintenance pass.
RETRY_BOUND_SECONDS = RETRY_AFTER_SECONDS + 1 + 12
#: How long Redis stays down: a fault scenario's length, not a wait for a condition.
OUTAGE_SECONDS = 4.0
SCHEDULED_REGISTRY = "rq:scheduled:assessments"

_TOKEN = issue_token(
    secret=TEST_SECRET, sub="junior-1", name="Junior One", role=Role.engineer, org="acme",
    ttl=timedelta(hours=1),
)  # fmt: skip
HEADERS = {"Authorization": f"Bearer {_TOKEN}"}


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(mode="error") as running:  # the first try fails
        yield running


@pytest.fixture
def redis_dir(tmp_path: Path) -> Path:
    path = tmp_path / "redis-data"
    path.mkdir()
    return path


@pytest.fixture
def persistent_redis(process_logs: Path, redis_dir: Path) -> Iterator[Proc]:
    """A redis-server that keeps its keys across a restart on the same directory,
    as a production Redis with persistence does: the scheduled retry survives."""
    proc = start_redis(free_port(), log_dir=process_logs, data_dir=redis_dir)
    yield proc
    proc.stop()


@pytest.fixture
def redis_client(persistent_redis: Proc) -> Iterator[Redis]:
    client = make_redis(redis_url(persistent_redis.port))
    yield client
    client.close()


@pytest.fixture
def env(postgres_url: str, persistent_redis: Proc, stub: OpenAIStub) -> dict[str, str]:
    from shared.core.db import make_engine
    from tests.conftest import empty_tables

    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    return api_env(
        database_url=postgres_url,
        redis_url=redis_url(persistent_redis.port),
        jwt_secret=TEST_SECRET,
        assessor="openai",
        llm_base_url=stub.base_url,
        llm_model="stub",
        assessment_retries="2",
        assessment_retry_intervals_seconds=f"[{RETRY_AFTER_SECONDS}]",
    )


def _assessment_status(api: Proc, handoff_id: str) -> str:
    url = f"{base_url(api.port)}/api/v1/handoffs/{handoff_id}"
    return httpx.get(url, headers=HEADERS).json()["assessment_status"]


def _retry_scheduled(redis: Redis) -> bool:
    try:
        return redis.zcard(SCHEDULED_REGISTRY) == 1
    except RedisError:
        return False


def _create_and_fail_once(api: Proc, stub: OpenAIStub, redis: Redis) -> str:
    """A handoff whose first assessment try failed and whose retry is scheduled."""
    created = httpx.post(
        f"{base_url(api.port)}/api/v1/handoffs", json=handoff_body("sess-retry"), headers=HEADERS
    )
    assert created.status_code == 201, created.text
    poll(lambda: _retry_scheduled(redis), timeout=15, what="scheduled retry")
    assert stub.request_count == 1
    stub.set_mode("good")
    return created.json()["id"]


def test_a_retry_scheduled_before_a_redis_outage_runs_after_it(
    env: dict[str, str],
    start_replica: StartReplica,
    persistent_redis: Proc,
    redis_client: Redis,
    redis_dir: Path,
    process_logs: Path,
    stub: OpenAIStub,
) -> None:
    api = start_replica(env)
    worker = start_worker("worker-outage", env=env, log_dir=process_logs, redis=redis_client)
    try:
        handoff_id = _create_and_fail_once(api, stub, redis_client)
        persistent_redis.stop()  # the retry falls due while Redis is away
        time.sleep(OUTAGE_SECONDS)
        restarted = start_redis(persistent_redis.port, log_dir=process_logs, data_dir=redis_dir)
        try:
            took = poll(
                lambda: _assessment_status(api, handoff_id) == "ready",
                timeout=RETRY_BOUND_SECONDS,
                what="assessment after the outage",
            )
        finally:
            restarted.stop()
        print(f"retry ran {took:.1f} s after Redis came back")
        assert stub.request_count == 2
    finally:
        worker.stop()


def test_kill_9_of_a_worker_leaves_nothing_running_and_its_retry_runs(
    env: dict[str, str],
    start_replica: StartReplica,
    redis_client: Redis,
    process_logs: Path,
    stub: OpenAIStub,
) -> None:
    api = start_replica(env)
    doomed = start_worker("worker-doomed", env=env, log_dir=process_logs, redis=redis_client)
    try:
        handoff_id = _create_and_fail_once(api, stub, redis_client)
        left_behind = descendants(doomed.popen.pid)
    except BaseException:
        doomed.stop()
        raise

    os.kill(doomed.popen.pid, signal.SIGKILL)  # the process alone, as `kill -9 PID` does
    doomed.popen.wait(10)
    try:
        poll(
            lambda: not any(alive(pid) for pid in left_behind),
            timeout=10,
            what=f"exit of the killed worker's children {left_behind}",
        )
    finally:
        for pid in left_behind:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    replacement = start_worker("worker-new", env=env, log_dir=process_logs, redis=redis_client)
    try:
        poll(
            lambda: _assessment_status(api, handoff_id) == "ready",
            timeout=RETRY_BOUND_SECONDS,
            what="assessment by the new worker",
        )
        assert stub.request_count == 2
    finally:
        replacement.stop()
