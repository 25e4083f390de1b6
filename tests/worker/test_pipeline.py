"""The assessment job end to end in one process: the API enqueues into real
Redis, the service's RQ SimpleWorker runs the job against a real database, and the LLM is
the local OpenAI-compatible stub."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue

from services.worker.context import WorkerContext, set_context
from services.worker.rq_classes import PromptSimpleWorker
from shared.core import keys
from shared.core.settings import Settings
from testkit.openai_stub import GOOD_ANSWER, OpenAIStub
from tests.conftest import REDIS_URL, TEST_SECRET, TokenFactory, handoff_body


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(mode="good") as running:
        yield running


@pytest.fixture
def settings(database_url: str, stub: OpenAIStub) -> Settings:
    """One retry, at once, so a failing assessment fails within one burst."""
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        jwt_secret=TEST_SECRET,
        assessor="openai",
        llm_base_url=stub.base_url,
        llm_model="test-model",
        llm_timeout_seconds=5,
        assessment_retries=1,
        assessment_retry_intervals_seconds=[0],
    )


@pytest.fixture
def run_worker(settings: Settings, redis: Redis) -> Iterator[object]:
    context = WorkerContext.build(settings)
    set_context(context)

    def burst() -> None:
        queue = Queue(keys.ASSESSMENTS_QUEUE, connection=redis)
        PromptSimpleWorker([queue], connection=redis).work(burst=True)

    yield burst
    set_context(None)
    context.close()


def _create(client: TestClient, auth: TokenFactory) -> dict:
    response = client.post("/api/v1/handoffs", json=handoff_body(), headers=auth("engineer"))
    assert response.status_code == 201
    return response.json()


def _get(client: TestClient, auth: TokenFactory, handoff_id: str) -> dict:
    return client.get(f"/api/v1/handoffs/{handoff_id}", headers=auth("senior")).json()


def _event_types(client: TestClient, auth: TokenFactory, handoff_id: str) -> list[str]:
    history = client.get(f"/api/v1/handoffs/{handoff_id}/history", headers=auth("senior"))
    return [event["type"] for event in history.json()["items"]]


def test_good_answer_is_stored_with_its_event(
    client: TestClient, auth: TokenFactory, run_worker, stub: OpenAIStub
) -> None:
    created = _create(client, auth)
    run_worker()
    handoff = _get(client, auth, created["id"])
    assert handoff["assessment_status"] == "ready"
    assessment = handoff["ai_assessment_data"]
    assert assessment["summary"] == GOOD_ANSWER["summary"]
    assert assessment["suggested_steps"] == GOOD_ANSWER["suggested_steps"]
    assert assessment["generator"] == "openai:test-model"
    assert _event_types(client, auth, created["id"]) == [
        "handoff_created",
        "handoff_assessment_ready",
    ]
    assert stub.request_count == 1


def test_malformed_answer_is_retried_then_fails_then_retry_endpoint_succeeds(
    client: TestClient, auth: TokenFactory, run_worker, stub: OpenAIStub
) -> None:
    stub.set_mode("malformed")
    created = _create(client, auth)
    run_worker()
    assert stub.request_count == 2  # the first try and its one retry
    handoff = _get(client, auth, created["id"])
    assert (handoff["assessment_status"], handoff["ai_assessment_data"]) == ("failed", None)
    assert _event_types(client, auth, created["id"]).count("handoff_assessment_failed") == 1

    stub.set_mode("good")
    retried = client.post(
        f"/api/v1/handoffs/{created['id']}/assessment/retry", headers=auth("senior")
    )
    assert retried.status_code == 202
    assert retried.json()["assessment_status"] == "pending"
    run_worker()
    assert _get(client, auth, created["id"])["assessment_status"] == "ready"
    assert _event_types(client, auth, created["id"])[-1] == "handoff_assessment_ready"


def test_retry_is_refused_while_ready_or_running(
    client: TestClient, auth: TokenFactory, run_worker
) -> None:
    created = _create(client, auth)
    url = f"/api/v1/handoffs/{created['id']}/assessment/retry"
    running = client.post(url, headers=auth("senior"))
    assert (running.status_code, running.json()["error"]) == (409, "assessment_running")
    run_worker()
    ready = client.post(url, headers=auth("admin"))
    assert (ready.status_code, ready.json()["error"]) == (409, "assessment_ready")


def test_retry_needs_a_senior_of_the_same_org(
    client: TestClient, auth: TokenFactory, run_worker
) -> None:
    created = _create(client, auth)
    url = f"/api/v1/handoffs/{created['id']}/assessment/retry"
    assert client.post(url, headers=auth("engineer")).status_code == 403
    assert client.post(url, headers=auth("senior", org="other")).status_code == 404
    assert client.post(url).status_code == 401


def test_rerun_of_a_finished_job_writes_no_second_event(
    client: TestClient, auth: TokenFactory, run_worker, settings: Settings, redis: Redis
) -> None:
    from shared.core.jobs import enqueue_assessment

    created = _create(client, auth)
    run_worker()
    enqueue_assessment(redis, handoff_id=created["id"], org_id="acme", settings=settings)
    run_worker()
    assert _event_types(client, auth, created["id"]).count("handoff_assessment_ready") == 1
