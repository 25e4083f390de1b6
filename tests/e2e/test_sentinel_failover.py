"""Redis Sentinel failover under load, with real processes: a primary, a
replica and three sentinels (Debian's redis-sentinel), two API replicas, a
worker and rq-dashboard that find the master through the sentinels. The primary is SIGKILLed
while handoffs are created, claimed and streamed; nothing is restarted by hand.

After the failover: every accepted handoff is there and assessed, every stream
got every event of the org once and in order (replay fills what the failover
delayed), and every claim race had exactly one winner.
"""

import asyncio
import threading
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from redis.sentinel import Sentinel

from shared.auth.tokens import issue_token
from shared.core.db import make_engine, session_scope
from shared.core.models import Role
from shared.events.record import latest_seq
from testkit.procs import Proc, api_env, base_url, free_port, poll
from testkit.storm import claim_storm, make_seniors, open_claimers, storm_problems
from testkit.workers import start_worker
from tests.conftest import TEST_SECRET, empty_tables, handoff_body
from tests.deploy.test_rq_dashboard import start_dashboard
from tests.e2e.conftest import StartReplica
from tests.e2e.sentinel import MASTER, SentinelCluster, sentinel_cluster
from tests.e2e.sse import SSEClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ORG = "acme"
CLAIMERS = 10
CREATES_AFTER_FAILOVER = 10
#: Sentinel's down-after (1 s) and election, with room for a busy machine.
FAILOVER_BOUND_SECONDS = 30
SETTLE_BOUND_SECONDS = 60


def _token(role: Role, sub: str) -> str:
    return issue_token(
        secret=TEST_SECRET, sub=sub, name=sub, role=role, org=ORG, ttl=timedelta(hours=1)
    )


JUNIOR = {"Authorization": f"Bearer {_token(Role.engineer, 'junior-1')}"}
SENIOR_TOKEN = _token(Role.senior, "reader-1")
SENIOR = {"Authorization": f"Bearer {SENIOR_TOKEN}"}


class CreateLoad(threading.Thread):
    """Creates handoffs on the replicas in turn, every 100 ms, until stopped;
    keeps what was accepted and every other answer."""

    def __init__(self, replicas: Sequence[Proc]) -> None:
        super().__init__(daemon=True)
        self.urls = [base_url(proc.port) for proc in replicas]
        self.accepted: list[str] = []
        self.refused: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        n = 0
        while not self._halt.is_set() and n < 2_000:
            url = f"{self.urls[n % len(self.urls)]}/api/v1/handoffs"
            try:
                response = httpx.post(url, json=handoff_body(f"s-{n}"), headers=JUNIOR, timeout=10)
            except httpx.HTTPError as exc:
                self.refused.append(repr(exc))
            else:
                if response.status_code == 201:
                    self.accepted.append(response.json()["id"])
                else:
                    self.refused.append(f"{response.status_code} {response.text}")
            n += 1
            self._halt.wait(0.1)

    def stop(self) -> None:
        self._halt.set()
        self.join(15)


def _claim_race(replicas: Sequence[Proc]) -> list[str]:
    """A fresh handoff and CLAIMERS seniors claiming it at once over both replicas."""

    async def race() -> list[str]:
        urls = [base_url(proc.port) for proc in replicas]
        seniors = make_seniors(CLAIMERS, secret=TEST_SECRET, org=ORG)
        async with open_claimers(seniors, urls) as claimers:
            created = await claimers[0].client.post(
                "/api/v1/handoffs", json=handoff_body(f"race-{uuid.uuid4().hex}"), headers=JUNIOR
            )
            assert created.status_code == 201, created.text
            storm = await claim_storm(claimers, handoff_id=created.json()["id"])
            return storm_problems(storm)

    return asyncio.run(race())


def test_primary_killed_under_load_fails_over_and_loses_nothing(
    postgres_url: str, start_replica: StartReplica, process_logs: Path
) -> None:
    engine = make_engine(postgres_url)
    empty_tables(engine)
    with sentinel_cluster(log_dir=process_logs) as cluster:
        env = api_env(
            database_url=postgres_url,
            redis_url="redis://found-by-sentinel/0",  # only the database number is used
            jwt_secret=TEST_SECRET,
            redis_sentinels=cluster.addresses,
            redis_sentinel_master=MASTER,
            maintenance_interval_seconds="1",
        )
        replicas = [start_replica(env), start_replica(env)]
        master = Sentinel([("127.0.0.1", s.port) for s in cluster.sentinels]).master_for(MASTER)
        worker = start_worker("worker-sentinel", env=env, log_dir=process_logs, redis=master)
        # rq-dashboard as docs/operations.md tells operators to run it with Sentinel.
        dashboard_url = f"redis+sentinel://{cluster.addresses}/{MASTER}/0"
        dashboard = start_dashboard(free_port(), redis=dashboard_url, log_dir=process_logs)
        processes = [*replicas, worker, dashboard]
        pids = [proc.popen.pid for proc in processes]
        try:
            _fail_over_under_load(cluster, replicas, engine)
            assert _dashboard_lists(dashboard, "worker-sentinel")  # it reads the new master
            assert [proc.running for proc in processes] == [True] * len(processes)
            assert [proc.popen.pid for proc in processes] == pids  # nothing was restarted
        finally:
            dashboard.stop()
            worker.stop()
            engine.dispose()


def _dashboard_lists(dashboard: Proc, worker_name: str) -> bool:
    response = httpx.get(f"{base_url(dashboard.port)}/0/data/workers.json", timeout=10)
    assert response.status_code == 200, response.text
    return worker_name in {worker["name"] for worker in response.json()["workers"]}


def _fail_over_under_load(cluster: SentinelCluster, replicas: list[Proc], engine) -> None:  # type: ignore[no-untyped-def]
    one, two = replicas
    with (
        SSEClient(one.port, token=SENIOR_TOKEN) as on_one,
        SSEClient(two.port, token=SENIOR_TOKEN) as on_two,
    ):
        on_one.wait_ready(), on_two.wait_ready()
        load = CreateLoad(replicas)
        load.start()
        try:
            assert _claim_race(replicas) == [], "race before the failover"
            poll(lambda: len(load.accepted) >= 5, timeout=30, what="creates before the kill")

            cluster.primary.kill()
            took = poll(
                lambda: cluster.master_port() == cluster.replica.port,
                timeout=FAILOVER_BOUND_SECONDS,
                what="failover to the replica",
            )
            print(f"sentinels promoted the replica {took:.1f} s after the kill")
            assert _claim_race(replicas) == [], "race after the failover"
            at_failover = len(load.accepted)
            poll(
                lambda: len(load.accepted) >= at_failover + CREATES_AFTER_FAILOVER,
                timeout=60,
                what="creates after the failover",
            )
        finally:
            load.stop()
        assert load.refused == [], load.refused[:3]

        accepted = load.accepted
        for handoff_id in accepted:
            poll(
                lambda h=handoff_id: _assessment_status(one, h) == "ready",
                timeout=SETTLE_BOUND_SECONDS,
                what=f"assessment of {handoff_id}",
            )
        with session_scope(engine) as session:
            newest = latest_seq(session, org_id=ORG)
        for client in (on_one, on_two):
            client.wait_for(
                lambda c: len(c.events()) >= newest,
                timeout=SETTLE_BOUND_SECONDS,
                what="every event",
            )
            assert [message.id for message in client.events()] == list(range(1, newest + 1))
        print(f"{len(accepted)} handoffs accepted, {newest} events streamed to each client once")


def _assessment_status(api: Proc, handoff_id: str) -> str:
    response = httpx.get(
        f"{base_url(api.port)}/api/v1/handoffs/{handoff_id}", headers=SENIOR, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["assessment_status"]
