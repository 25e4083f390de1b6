"""The two worker pools end to end: a real ``escalations api`` and
``escalations worker --queues …`` processes on PostgreSQL and a private
redis-server, sending to local receivers.

* ``--queues assessments`` assesses and leaves deliveries waiting on
  ``notifications``; a ``--queues notifications`` worker then sends them.
* Org B's receiver accepts and never answers (its tries hang until the try's
  deadline): org A's delivery and assessment still arrive within 2 s, since a
  hanging try holds one of the notifications worker's threads and org B can
  have no more than its cap of tries in flight.
"""

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from rq import Queue, Worker

from shared.auth.tokens import issue_token
from shared.core import keys
from shared.core.db import make_engine
from shared.core.models import Role
from shared.core.redis_client import make_redis
from testkit.procs import Proc, api_env, base_url, poll, redis_url
from testkit.webhook_receiver import HANG, Receiver
from testkit.workers import start_worker
from tests.conftest import TEST_SECRET, empty_tables, handoff_body
from tests.e2e.conftest import StartReplica

pytestmark = pytest.mark.slow

#: A hanging try lasts this long: far above the 2 s org A is promised.
TRY_SECONDS = 6


def headers(role: Role, org: str) -> dict[str, str]:
    token = issue_token(
        secret=TEST_SECRET, sub=f"{role.value}-{org}", name="Jo", role=role, org=org,
        ttl=timedelta(hours=1),
    )  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def env(postgres_url: str, private_redis: Proc) -> dict[str, str]:
    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    return api_env(
        database_url=postgres_url,
        redis_url=redis_url(private_redis.port),
        jwt_secret=TEST_SECRET,
        webhook_allow_private_networks="true",
        webhook_timeout_seconds=str(TRY_SECONDS),
        webhook_max_in_flight_per_org="4",
        webhook_concurrency="8",
        maintenance_interval_seconds="0.5",
    )


@pytest.fixture
def redis_client(private_redis: Proc) -> Iterator[Redis]:
    client = make_redis(redis_url(private_redis.port))
    yield client
    client.close()


def subscribe(api: str, org: str, url: str) -> str:
    body = {"url": url, "events": ["handoff_created"]}
    response = httpx.post(f"{api}/api/v1/webhooks", json=body, headers=headers(Role.admin, org))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def create(api: str, org: str, session_id: str) -> dict[str, Any]:
    response = httpx.post(
        f"{api}/api/v1/handoffs",
        json=handoff_body(session_id),
        headers=headers(Role.engineer, org),
    )
    assert response.status_code == 201, response.text
    return response.json()


def assessed(api: str, org: str, handoff_id: str) -> bool:
    response = httpx.get(f"{api}/api/v1/handoffs/{handoff_id}", headers=headers(Role.admin, org))
    return response.json()["assessment_status"] == "ready"


def test_each_pool_serves_only_its_queue(
    env: dict[str, str],
    start_replica: StartReplica,
    process_logs: Path,
    redis_client: Redis,
) -> None:
    api = base_url(start_replica(env).port)
    with Receiver() as receiver:
        subscribe(api, "org-a", receiver.url())
        assessor = start_worker(
            "pool-assess", "--queues", "assessments",
            env=env, log_dir=process_logs, redis=redis_client,
        )  # fmt: skip
        try:
            worker = Worker.find_by_key("rq:worker:pool-assess", connection=redis_client)
            assert worker is not None and worker.queue_names() == [keys.ASSESSMENTS_QUEUE]
            handoff = create(api, "org-a", "sess-pools-1")
            poll(lambda: assessed(api, "org-a", handoff["id"]), timeout=10, what="assessment")
            notifications = Queue(keys.NOTIFICATIONS_QUEUE, connection=redis_client)
            poll(lambda: notifications.count == 1, timeout=5, what="the delivery's job waiting")
            assert receiver.hook_requests() == []

            sender = start_worker(
                "pool-notify", "--queues", "notifications",
                env=env, log_dir=process_logs, redis=redis_client,
            )  # fmt: skip
            try:
                poll(lambda: len(receiver.hook_requests()) == 1, timeout=5, what="the delivery")
            finally:
                sender.stop()
        finally:
            assessor.stop()


def test_a_receiver_that_never_answers_delays_only_its_own_org(
    env: dict[str, str],
    start_replica: StartReplica,
    process_logs: Path,
    redis_client: Redis,
) -> None:
    api = base_url(start_replica(env).port)
    with Receiver([HANG]) as hanging, Receiver() as quick:
        for _ in range(3):
            subscribe(api, "org-b", hanging.url())
        subscribe(api, "org-a", quick.url())
        workers = [
            start_worker(
                f"pool-{queue}",
                "--queues",
                queue,
                env=env,
                log_dir=process_logs,
                redis=redis_client,
            )  # fmt: skip
            for queue in keys.WORKER_QUEUES
        ]
        try:
            for n in range(3):  # 9 tries that hang, 4 of them (org B's cap) at once
                create(api, "org-b", f"sess-noisy-{n}")
            poll(lambda: len(hanging.hook_requests()) == 4, timeout=10, what="org B's tries")

            started = time.monotonic()
            handoff = create(api, "org-a", "sess-quiet")
            poll(lambda: len(quick.hook_requests()) == 1, timeout=2, what="org A's delivery")
            delivered = time.monotonic() - started
            poll(lambda: assessed(api, "org-a", handoff["id"]), timeout=2, what="assessment")
            assert len(hanging.hook_requests()) == 4  # org B: still its cap, not more
        finally:
            for worker in workers:
                worker.stop(timeout=TRY_SECONDS + 5)
    assert delivered < 2
