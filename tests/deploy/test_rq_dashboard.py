"""rq-dashboard (the ``ops`` extra, compose's ``rq-dashboard``) run as its own
process against a private redis-server: it lists the ``assessments`` queue, a
real ``escalations worker`` and the app's job under its readable description.
"""

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.core.jobs import enqueue_assessment
from shared.core.keys import ASSESSMENTS_QUEUE, NOTIFICATIONS_QUEUE, assessment_job_id
from shared.core.redis_client import make_redis
from shared.core.settings import Settings
from shared.core.timeutil import utcnow
from shared.webhooks.dispatch import enqueue_delivery
from shared.webhooks.models import WebhookDelivery
from testkit.procs import (
    Proc,
    api_env,
    base_url,
    free_port,
    redis_url,
    spawn,
    start_redis,
    wait_until,
)
from testkit.workers import start_worker
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.slow

WORKER_NAME = "dash-worker"


def dashboard_binary() -> str:
    return str(Path(sys.executable).with_name("rq-dashboard"))


def start_dashboard(port: int, *, redis: str, log_dir: Path) -> Proc:
    """``rq-dashboard`` as compose runs it, answering its JSON API on return."""
    argv = [dashboard_binary(), "-b", "127.0.0.1", "-p", str(port), "-u", redis]
    proc = spawn("rq-dashboard", argv, port=port, log_dir=log_dir)
    try:
        wait_until(lambda: _answers(port), proc=proc, what="queues.json")
    except BaseException:
        proc.stop()
        raise
    return proc


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"{base_url(port)}/0/data/queues.json", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
def private_redis(logs: Path) -> Iterator[Proc]:
    proc = start_redis(free_port(), log_dir=logs)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def dashboard(private_redis: Proc, logs: Path) -> Iterator[Proc]:
    proc = start_dashboard(free_port(), redis=redis_url(private_redis.port), log_dir=logs)
    try:
        yield proc
    finally:
        proc.stop()


def data(dashboard: Proc, path: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url(dashboard.port)}/0/data/{path}", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def test_dashboard_shows_the_queue_the_worker_and_the_job(
    dashboard: Proc, private_redis: Proc, postgres_url: str, logs: Path
) -> None:
    redis = make_redis(redis_url(private_redis.port))
    settings = Settings(
        database_url=postgres_url, redis_url=redis_url(private_redis.port), jwt_secret=TEST_SECRET
    )
    handoff_id = str(uuid.uuid4())  # no such handoff: the worker will skip it
    job = enqueue_assessment(redis, handoff_id=handoff_id, org_id="acme", settings=settings)
    description = f"Assess handoff {handoff_id} (org acme)"
    assert job.id == assessment_job_id(handoff_id)

    queues = {q["name"]: q for q in data(dashboard, "queues.json")["queues"]}
    assert queues[ASSESSMENTS_QUEUE]["count"] == 1
    queued = data(dashboard, f"jobs/{ASSESSMENTS_QUEUE}/queued/8/asc/1.json")["jobs"]
    assert [(j["id"], j["description"]) for j in queued] == [(job.id, description)]
    delivery = WebhookDelivery(  # not in the database: the worker will skip it
        id=str(uuid.uuid4()), org_id="acme", webhook_id="wh-1", event_type="handoff_created",
        status="pending", created_at=utcnow(), updated_at=utcnow(),
    )  # fmt: skip
    delivery_job = enqueue_delivery(redis, delivery, settings=settings)
    queued = data(dashboard, f"jobs/{NOTIFICATIONS_QUEUE}/queued/8/asc/1.json")["jobs"]
    assert [j["description"] for j in queued] == [
        f"Deliver handoff_created to webhook wh-1 (org acme, delivery {delivery.id}, try 1)"
    ]

    env = api_env(
        database_url=postgres_url, redis_url=redis_url(private_redis.port), jwt_secret=TEST_SECRET
    )
    worker = start_worker(WORKER_NAME, env=env, log_dir=logs, redis=redis)
    try:
        workers = {w["name"]: w for w in data(dashboard, "workers.json")["workers"]}
        assert workers[WORKER_NAME]["queues"] == [ASSESSMENTS_QUEUE, NOTIFICATIONS_QUEUE]
        wait_until(
            lambda: data(dashboard, f"job/{job.id}.json")["status"] == "finished",
            proc=worker, what="the job to finish", timeout=20,
        )  # fmt: skip
        shown = data(dashboard, f"job/{job.id}.json")
        assert (shown["description"], shown["origin"]) == (description, ASSESSMENTS_QUEUE)
        assert shown["result"] == "skipped"
        wait_until(
            lambda: data(dashboard, f"job/{delivery_job.id}.json")["status"] == "finished",
            proc=worker, what="the delivery job to finish", timeout=20,
        )  # fmt: skip
        # The worker serves notifications: the job hands its try to the try pool (which then
        # finds no such delivery and skips it).
        assert data(dashboard, f"job/{delivery_job.id}.json")["result"] == "pooled"
        page = httpx.get(f"{base_url(dashboard.port)}/0/view/workers", timeout=5)
        assert page.status_code == 200 and "<title>RQ dashboard</title>" in page.text
        assert "Traceback" not in dashboard.log_text()
    finally:
        worker.stop()
        redis.close()
