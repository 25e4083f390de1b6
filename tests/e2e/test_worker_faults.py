"""A worker outlives every Redis fault, with real processes: an ``escalations
api``, ``escalations worker`` processes, real redis-servers (a Sentinel
deployment for the failover), PostgreSQL and the OpenAI stub as the LLM.

The faults land where the worker was once killed by one: while it rebuilds
RQ's worker after an earlier Redis error (RQ's ``Worker(...)`` sends
``CLIENT SETNAME``). A proxy in front of Redis (tests/e2e/fault_proxy.py)
stops or kills Redis the moment the rebuilding worker sends that command, so
the timing is certain, not lucky: each such test failed on the code before the
fix (the process exited with the constructor's ``ConnectionError``). The
earlier error comes from a job in flight, since RQ's loop rides out a Redis
error in its idle dequeue on its own: that path (an idle worker through an
outage, back at work within seconds) and a worker started while Redis is down
are covered too.
"""

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
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
    POLL_SECONDS,
    Proc,
    api_env,
    base_url,
    escalations_binary,
    free_port,
    poll,
    redis_url,
    spawn,
    start_redis,
    wait_until,
)
from testkit.workers import start_worker
from tests.conftest import TEST_SECRET, handoff_body
from tests.e2e.conftest import StartReplica
from tests.e2e.fault_proxy import FaultProxy
from tests.e2e.sentinel import MASTER, sentinel_cluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: How long Redis stays down: a fault scenario's length, not a wait for a condition.
#: Longer than redis-py's own retries of one command (10 tries, back-off capped at
#: 1 s: under 5 s), so the fault reaches the worker's code.
OUTAGE_SECONDS = 15.0
#: Sentinel's down-after for the failover test: the failover outlasts redis-py's
#: retries too (with the usual 1 s, they can ride it out, and the test proves less).
FAILOVER_DOWN_AFTER_MS = 8000
#: The job in flight when the first fault lands: long enough to kill Redis under it.
JOB_SECONDS = 2.0
#: From Redis back to a new handoff assessed: RQ's dequeue back-off and a margin.
RECOVERY_BOUND_SECONDS = 45
#: The same for an idle worker: its dequeue retries at most 2 s apart
#: (services/worker/rq_classes.py; RQ's own back-off took 16 s here).
IDLE_RECOVERY_BOUND_SECONDS = 8.0
REBUILD_LOG = "worker: redis unavailable"

_TOKEN = issue_token(
    secret=TEST_SECRET, sub="junior-1", name="Junior One", role=Role.engineer, org="acme",
    ttl=timedelta(hours=1),
)  # fmt: skip
HEADERS = {"Authorization": f"Bearer {_TOKEN}"}


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(mode="good") as running:
        yield running


@pytest.fixture
def env(postgres_url: str, stub: OpenAIStub) -> dict[str, str]:
    """Every setting but where Redis is (each test says)."""
    from shared.core.db import make_engine
    from tests.conftest import empty_tables

    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    return api_env(
        database_url=postgres_url,
        redis_url="redis://unset/0",
        jwt_secret=TEST_SECRET,
        assessor="openai",
        llm_base_url=stub.base_url,
        llm_model="stub",
        llm_timeout_seconds="60",
        maintenance_interval_seconds="1",
    )


def _with_redis(env: dict[str, str], url: str) -> dict[str, str]:
    return {**env, "ESCALATIONS_REDIS_URL": url}


def _create(api: Proc) -> str:
    response = httpx.post(
        f"{base_url(api.port)}/api/v1/handoffs",
        json=handoff_body(f"sess-{uuid.uuid4().hex[:8]}"),
        headers=HEADERS,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _ready(api: Proc, handoff_id: str) -> bool:
    url = f"{base_url(api.port)}/api/v1/handoffs/{handoff_id}"
    response = httpx.get(url, headers=HEADERS, timeout=10)
    return response.status_code == 200 and response.json()["assessment_status"] == "ready"


def _registered(redis: Redis, name: str) -> bool:
    try:
        return bool(redis.sismember("rq:workers", f"rq:worker:{name}"))
    except RedisError:
        return False


def _watch(processes: list[Proc], seconds: float) -> None:
    """Assert every process keeps running for ``seconds`` (the fault's length)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        for proc in processes:
            assert proc.running, f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log_tail()}"
        time.sleep(POLL_SECONDS)


def _job_in_flight(api: Proc, stub: OpenAIStub) -> str:
    """A handoff whose assessment a worker is running now (the LLM answers in
    ``JOB_SECONDS``); later calls answer at once."""
    stub.set_mode("slow", delay=JOB_SECONDS)
    handoff_id = _create(api)
    poll(lambda: stub.request_count == 1, timeout=15, what="the assessment in flight")
    stub.set_mode("good")
    return handoff_id


def _assessed_after(api: Proc, handoff_ids: list[str], *, what: str) -> float:
    """Wait until each is assessed; returns the seconds it took."""
    started = time.monotonic()
    for handoff_id in handoff_ids:
        poll(lambda h=handoff_id: _ready(api, h), timeout=RECOVERY_BOUND_SECONDS, what=what)
    return time.monotonic() - started


def test_redis_stopped_for_15_s_as_the_worker_rebuilds_itself(
    env: dict[str, str],
    start_replica: StartReplica,
    private_redis: Proc,
    process_logs: Path,
    stub: OpenAIStub,
) -> None:
    port = private_redis.port
    redis = make_redis(redis_url(port))
    with ExitStack() as cleanup, FaultProxy(port) as proxy:
        cleanup.callback(redis.close)
        api = start_replica(_with_redis(env, redis_url(port)))
        name = f"faults-worker-{uuid.uuid4().hex[:6]}"
        worker_env = _with_redis(env, redis_url(proxy.port))
        worker = start_worker(name, env=worker_env, log_dir=process_logs, redis=redis)
        cleanup.callback(worker.stop)

        # The earlier error: Redis stops under a job, so RQ's loop ends on it.
        lost = _job_in_flight(api, stub)
        private_redis.stop()
        wait_until(
            lambda: REBUILD_LOG in worker.log_text(),
            proc=worker,
            what="the worker waiting for Redis",
        )
        # Redis comes back, and stops again for 15 s the moment the worker rebuilds
        # RQ's worker (its CLIENT SETNAME), before that command reaches it.
        downed: list[Proc] = []
        proxy.arm([b"SETNAME", name.encode()], action=lambda: downed[0].kill())
        downed.append(start_redis(port, log_dir=process_logs))
        poll(proxy.fired.is_set, timeout=30, what="the worker's rebuild")
        _watch([worker], OUTAGE_SECONDS)

        back = start_redis(port, log_dir=process_logs)
        cleanup.callback(back.stop)
        wait_until(
            lambda: _registered(redis, name), proc=worker, what="the worker registered again"
        )
        _assessed_after(api, [lost, _create(api)], what="assessment after the outage")
        assert worker.running


def test_sentinel_failover_as_the_worker_rebuilds_itself(
    env: dict[str, str],
    start_replica: StartReplica,
    process_logs: Path,
    stub: OpenAIStub,
) -> None:
    with ExitStack() as cleanup:
        cluster = cleanup.enter_context(
            sentinel_cluster(
                log_dir=process_logs, down_after_ms=FAILOVER_DOWN_AFTER_MS, proxied=True
            )
        )
        proxy = cluster.proxy
        assert proxy is not None
        sentinel_env = {
            **_with_redis(env, "redis://found-by-sentinel/0"),
            "ESCALATIONS_REDIS_SENTINELS": cluster.addresses,
            "ESCALATIONS_REDIS_SENTINEL_MASTER": MASTER,
        }
        api = start_replica(sentinel_env)
        primary = make_redis(redis_url(cluster.primary.port))
        cleanup.callback(primary.close)
        # Two workers: the one that runs the job rebuilds itself; the other is idle
        # in RQ's dequeue through the failover.
        prefix = f"faults-sentinel-{uuid.uuid4().hex[:6]}"
        workers = [
            start_worker(f"{prefix}-{n}", env=sentinel_env, log_dir=process_logs, redis=primary)
            for n in range(2)
        ]
        for worker in workers:
            cleanup.callback(worker.stop)

        # The earlier error: the primary is full (writes refused with OOM) as the
        # job ends, so RQ's loop ends on it and the worker rebuilds at once...
        proxy.arm([b"SETNAME", prefix.encode()], action=cluster.primary.kill)
        lost = _job_in_flight(api, stub)
        primary.config_set("maxmemory", "1")
        # ...and the primary is SIGKILLed the moment it does: the sentinels fail over.
        poll(proxy.fired.is_set, timeout=60, what="a worker's rebuild")
        failed_over_in = poll(
            lambda: cluster.master_port() == cluster.replica.port,
            timeout=60,
            what="failover to the replica",
        )
        _watch(workers, 2.0)  # the failover itself was watched by the poll above
        assert all(worker.running for worker in workers), [w.log_tail() for w in workers]
        print(f"sentinels promoted the replica {failed_over_in:.1f} s after the rebuild began")

        promoted = make_redis(redis_url(cluster.replica.port))
        cleanup.callback(promoted.close)
        rebuilt = [w for w in workers if REBUILD_LOG in w.log_text()]
        assert len(rebuilt) == 1, "one worker ran the job and rebuilt itself"
        wait_until(
            lambda: _registered(promoted, rebuilt[0].name),
            proc=rebuilt[0],
            what="the rebuilt worker registered on the new primary",
        )
        _assessed_after(api, [lost, _create(api), _create(api)], what="assessment after failover")
        assert all(worker.running for worker in workers)


def test_an_idle_worker_outlives_a_15_s_outage(
    env: dict[str, str],
    start_replica: StartReplica,
    private_redis: Proc,
    process_logs: Path,
) -> None:
    url = redis_url(private_redis.port)
    redis = make_redis(url)
    with ExitStack() as cleanup:
        cleanup.callback(redis.close)
        api = start_replica(_with_redis(env, url))
        worker = start_worker(
            "faults-idle", env=_with_redis(env, url), log_dir=process_logs, redis=redis
        )
        cleanup.callback(worker.stop)
        private_redis.stop()
        _watch([worker], OUTAGE_SECONDS)
        back = start_redis(private_redis.port, log_dir=process_logs)
        cleanup.callback(back.stop)
        took = _assessed_after(api, [_create(api)], what="assessment after the outage")
        print(f"a handoff created once Redis was back was assessed in {took:.1f} s")
        assert took <= IDLE_RECOVERY_BOUND_SECONDS
        assert worker.running


def test_a_worker_started_while_redis_is_down_waits_for_it(
    env: dict[str, str], start_replica: StartReplica, process_logs: Path
) -> None:
    port = free_port()
    url = redis_url(port)
    argv = [escalations_binary(), "worker", "--name", "faults-early"]
    worker = spawn("faults-early", argv, port=0, log_dir=process_logs, env=_with_redis(env, url))
    with ExitStack() as cleanup:
        cleanup.callback(worker.stop)
        _watch([worker], 5.0)  # no Redis yet: its first RQ worker cannot be built
        redis_proc = start_redis(port, log_dir=process_logs)
        cleanup.callback(redis_proc.stop)
        redis = make_redis(url)
        cleanup.callback(redis.close)
        wait_until(lambda: _registered(redis, "faults-early"), proc=worker, what="registration")
        api = start_replica(_with_redis(env, url))
        _assessed_after(api, [_create(api)], what="assessment")
