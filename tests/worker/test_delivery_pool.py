"""A notifications worker's try pool and the circuit breaker, in one process on
SQLite and PostgreSQL, with real Redis, the service's RQ worker and local
receivers: one receiver that never answers holds one thread while another
org's delivery goes out; a receiver failing every try is paused, as the webhook
and its delivery log show; ``--queues`` accepts only the two queues."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue
from sqlalchemy import Engine
from typer.testing import CliRunner

from services.cli import app as cli
from services.worker.context import WorkerContext, set_context
from services.worker.delivery_pool import DeliveryPool
from services.worker.main import parse_queues
from services.worker.rq_classes import PromptSimpleWorker
from shared.core import keys
from shared.core.settings import Settings
from shared.webhooks.dispatch import dispatch_due
from testkit.procs import GENEROUS_LIMITS, poll
from testkit.webhook_receiver import HANG, Receiver
from tests.conftest import REDIS_URL, TEST_SECRET, TokenFactory

WEBHOOKS = "/api/v1/webhooks"
TRY_SECONDS = 5.0


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        jwt_secret=TEST_SECRET,
        webhook_allow_private_networks=True,
        webhook_timeout_seconds=TRY_SECONDS,
        webhook_retry_intervals_seconds=[0.05] * 10,
        webhook_circuit_failures=2,
        webhook_circuit_min_seconds=0,
        webhook_circuit_pause_seconds=60,
        **GENEROUS_LIMITS,
    )


@pytest.fixture
def context(settings: Settings, engine: Engine, redis: Redis) -> Iterator[WorkerContext]:
    context = WorkerContext.build(settings)
    context.delivery_pool = DeliveryPool(size=4)
    set_context(context)
    yield context
    set_context(None)
    context.delivery_pool.stop()
    context.close()


def subscribe(client: TestClient, auth: TokenFactory, org: str, url: str) -> str:
    response = client.post(WEBHOOKS, json={"url": url}, headers=auth("admin", org=org))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def send_test(client: TestClient, auth: TokenFactory, org: str, webhook_id: str) -> None:
    response = client.post(f"{WEBHOOKS}/{webhook_id}/test", headers=auth("admin", org=org))
    assert response.status_code == 202, response.text


def work_once(context: WorkerContext, redis: Redis) -> None:
    """Enqueue what is due and let the RQ worker hand every job to the pool."""
    dispatch_due(engine=context.engine, redis=redis, settings=context.settings)
    PromptSimpleWorker([Queue(keys.NOTIFICATIONS_QUEUE, connection=redis)], connection=redis).work(
        burst=True
    )


def test_a_hanging_receiver_holds_one_thread_not_the_worker(
    client: TestClient, auth: TokenFactory, context: WorkerContext, redis: Redis
) -> None:
    with Receiver([HANG]) as hanging, Receiver() as quick:
        noisy = subscribe(client, auth, "org-b", hanging.url())
        for _ in range(3):
            send_test(client, auth, "org-b", noisy)
        work_once(context, redis)  # org B's three tries, first in the queue
        poll(lambda: len(hanging.hook_requests()) == 3, timeout=5, what="org B's tries")

        quiet = subscribe(client, auth, "org-a", quick.url())
        started = time.monotonic()
        send_test(client, auth, "org-a", quiet)
        work_once(context, redis)
        poll(lambda: len(quick.hook_requests()) == 1, timeout=2, what="org A's delivery")
        assert time.monotonic() - started < 2
        pool = context.delivery_pool
        assert pool is not None
        poll(lambda: pool.running == 3, timeout=5, what="org A's try recorded, its thread free")
        # The reconciler sees a try in the pool as live (its lease), not as lost.
        assert len(redis.keys("escalations:delivery-try:*")) == 3


def test_a_receiver_failing_every_try_is_paused_as_the_webhook_and_log_show(
    client: TestClient, auth: TokenFactory, context: WorkerContext, redis: Redis
) -> None:
    with Receiver([500]) as failing:
        webhook_id = subscribe(client, auth, "acme", failing.url())
        send_test(client, auth, "acme", webhook_id)
        send_test(client, auth, "acme", webhook_id)

        def shown() -> dict[str, Any]:
            return client.get(f"{WEBHOOKS}/{webhook_id}", headers=auth("admin")).json()

        def opened() -> bool:
            work_once(context, redis)
            return shown()["circuit"] == "open"

        poll(opened, timeout=10, what="the breaker open")
        pool = context.delivery_pool
        assert pool is not None and pool.drain(TRY_SECONDS)  # a try sent before it opened lands
        tries = len(failing.hook_requests())
        webhook = shown()
        assert webhook["consecutive_failures"] >= 2 and webhook["paused_until"] is not None
        log = client.get(f"{WEBHOOKS}/{webhook_id}/deliveries", headers=auth("admin")).json()
        assert all(entry["status"] == "pending" for entry in log["items"])
        assert {entry["paused_until"] for entry in log["items"]} == {webhook["paused_until"]}
        assert any("receiver paused until" in (e["last_error"] or "") for e in log["items"])

        for _ in range(5):  # retries fall due every 50 ms; none goes out while paused
            work_once(context, redis)
            assert pool.drain(TRY_SECONDS)
        assert len(failing.hook_requests()) == tries


def test_queues_are_one_or_both_of_the_two() -> None:
    assert parse_queues("assessments,notifications") == keys.WORKER_QUEUES
    assert parse_queues("notifications, assessments") == keys.WORKER_QUEUES  # served in order
    assert parse_queues("notifications") == (keys.NOTIFICATIONS_QUEUE,)
    for bad in ("", "emails", "assessments,assessments", "assessments,emails"):
        with pytest.raises(ValueError, match="--queues"):
            parse_queues(bad)
    result = CliRunner().invoke(cli, ["worker", "--queues", "emails"])
    assert result.exit_code == 2 and "--queues takes one or both" in result.output
