"""``POST /api/v1/handoffs``: the created handoff, every validation limit, 413,
Idempotency-Key and one open handoff per session."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq.job import Job

from shared.core import keys
from tests.api.helpers import (
    HANDOFFS,
    assert_error,
    create,
    event_types,
    get,
    list_all,
    with_snapshot,
)
from tests.conftest import handoff_body

MAX_BODY = 256 * 1024
MISSING = object()  # an override that removes the field


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def post(client: TestClient, headers: dict[str, str], body: Any, **kwargs: Any) -> Any:
    return client.post(HANDOFFS, json=body, headers=headers, **kwargs)


def assert_nothing_written(client: TestClient, auth) -> None:
    assert list_all(client, auth("admin")) == []


def assert_assessment_queued(redis: Redis, handoff: dict[str, Any]) -> None:
    job = Job.fetch(keys.assessment_job_id(handoff["id"]), connection=redis)
    assert job.origin == keys.ASSESSMENTS_QUEUE
    assert job.meta.items() >= {"handoff_id": handoff["id"], "org_id": handoff["org_id"]}.items()


# --- 201 -------------------------------------------------------------------------


def test_create_returns_the_full_handoff(client: TestClient, auth) -> None:
    before = datetime.now(UTC)
    body = handoff_body("sess-42", priority="high")
    response = post(client, auth("engineer", sub="u-7", name="Ada Junior"), body)

    assert response.status_code == 201, response.text
    handoff = response.json()
    assert uuid.UUID(handoff["id"]).version == 4
    assert handoff == handoff | {
        "org_id": "acme",
        "session_id": "sess-42",
        "status": "pending",
        "priority": "high",
        "created_by_id": "u-7",
        "created_by_name": "Ada Junior",
        "engineer_notes": body["engineer_notes"],
        "snapshot": body["snapshot"],
        "assessment_status": "pending",
        "ai_assessment_data": None,
        "claimed_by_id": None,
        "claimed_by_name": None,
        "claimed_at": None,
        "resolved_at": None,
        "resolution_notes": None,
    }
    created_at = parse_time(handoff["created_at"])
    assert before - timedelta(seconds=1) <= created_at <= datetime.now(UTC)
    assert parse_time(handoff["updated_at"]) == created_at


def test_created_handoff_is_stored_with_one_event_and_one_job(
    client: TestClient, auth, redis: Redis
) -> None:
    handoff = create(client, auth("engineer"))
    assert get(client, auth("senior"), handoff["id"]) == handoff
    assert event_types(client, auth("senior"), handoff["id"]) == ["handoff_created"]
    assert_assessment_queued(redis, handoff)


def test_defaults(client: TestClient, auth) -> None:
    body = handoff_body()
    del body["priority"], body["engineer_notes"]
    snapshot = with_snapshot()
    del snapshot["tried_steps"], snapshot["transcript"]
    body["snapshot"] = snapshot

    handoff = post(client, auth("engineer"), body).json()
    assert handoff["priority"] == "normal"
    assert handoff["engineer_notes"] == ""
    assert handoff["snapshot"]["tried_steps"] == []
    assert handoff["snapshot"]["transcript"] is None


@pytest.mark.parametrize("role", ["engineer", "senior", "admin"])
def test_every_role_may_create(client: TestClient, auth, role: str) -> None:
    assert post(client, auth(role), handoff_body()).status_code == 201


# --- 422: every limit ------------------------------------------------------------


def step(i: int) -> dict[str, str]:
    return {"description": f"step {i}", "outcome": "no change"}


def message(i: int) -> dict[str, str]:
    return {"role": "user" if i % 2 else "assistant", "content": f"message {i}"}


ACCEPTED_AT_THE_LIMIT = {
    "session_id-128": {"session_id": "s" * 128},
    "notes-10000": {"engineer_notes": "n" * 10_000},
    "summary-2000": {"snapshot": with_snapshot(problem_summary="p" * 2_000)},
    "domain-64": {"snapshot": with_snapshot(problem_domain="d" * 64)},
    "step_count-0": {"snapshot": with_snapshot(step_count=0)},
    "tried_steps-200": {"snapshot": with_snapshot(tried_steps=[step(i) for i in range(200)])},
    "transcript-500": {"snapshot": with_snapshot(transcript=[message(i) for i in range(500)])},
    "priority-urgent": {"priority": "urgent"},
    "confidence-medium": {"snapshot": with_snapshot(confidence_tier="medium")},
}

REJECTED = {
    "session_id-empty": ({"session_id": ""}, "session_id"),
    "session_id-129": ({"session_id": "s" * 129}, "session_id"),
    "session_id-number": ({"session_id": 12}, "session_id"),
    "notes-10001": ({"engineer_notes": "n" * 10_001}, "engineer_notes"),
    "priority-critical": ({"priority": "critical"}, "priority"),
    "priority-null": ({"priority": None}, "priority"),
    "summary-empty": ({"snapshot": with_snapshot(problem_summary="")}, "problem_summary"),
    "summary-2001": ({"snapshot": with_snapshot(problem_summary="p" * 2_001)}, "problem_summary"),
    "domain-empty": ({"snapshot": with_snapshot(problem_domain="")}, "problem_domain"),
    "domain-65": ({"snapshot": with_snapshot(problem_domain="d" * 65)}, "problem_domain"),
    "step_count-negative": ({"snapshot": with_snapshot(step_count=-1)}, "step_count"),
    "step_count-text": ({"snapshot": with_snapshot(step_count="four")}, "step_count"),
    # No coercion (lax mode took ``"4"`` as 4 and ``true`` as 1).
    "step_count-digits": ({"snapshot": with_snapshot(step_count="4")}, "step_count"),
    "step_count-true": ({"snapshot": with_snapshot(step_count=True)}, "step_count"),
    "confidence-unknown": (
        {"snapshot": with_snapshot(confidence_tier="certain")},
        "confidence_tier",
    ),
    "tried_steps-201": (
        {"snapshot": with_snapshot(tried_steps=[step(i) for i in range(201)])},
        "tried_steps",
    ),
    "tried_step-no-description": (
        {"snapshot": with_snapshot(tried_steps=[{"outcome": "x"}])},
        "description",
    ),
    "tried_step-extra-field": (
        {"snapshot": with_snapshot(tried_steps=[{**step(1), "by": "me"}])},
        "by",
    ),
    "transcript-501": (
        {"snapshot": with_snapshot(transcript=[message(i) for i in range(501)])},
        "transcript",
    ),
    "transcript-message-no-role": (
        {"snapshot": with_snapshot(transcript=[{"content": "hi"}])},
        "role",
    ),
    "snapshot-missing": ({"snapshot": MISSING}, "snapshot"),
    "snapshot-null": ({"snapshot": None}, "snapshot"),
    "snapshot-not-object": ({"snapshot": "stuck"}, "snapshot"),
    "snapshot-no-summary": (
        {"snapshot": {k: v for k, v in with_snapshot().items() if k != "problem_summary"}},
        "problem_summary",
    ),
    "snapshot-extra-field": ({"snapshot": with_snapshot(secret="x")}, "secret"),
    "session_id-nul": ({"session_id": "sess\x00"}, "session_id"),
    "notes-nul": ({"engineer_notes": "a\x00b"}, "engineer_notes"),
    "summary-nul": ({"snapshot": with_snapshot(problem_summary="\x00")}, "problem_summary"),
    "extra-top-level-field": ({"status": "resolved"}, "status"),
    "extra-id-field": ({"id": "00000000-0000-4000-8000-000000000000"}, "id"),
}


@pytest.mark.parametrize("overrides", ACCEPTED_AT_THE_LIMIT.values(), ids=ACCEPTED_AT_THE_LIMIT)
def test_values_at_the_limits_are_accepted(client: TestClient, auth, overrides: dict) -> None:
    assert post(client, auth("engineer"), handoff_body(**overrides)).status_code == 201


@pytest.mark.parametrize(("overrides", "field"), REJECTED.values(), ids=REJECTED)
def test_each_limit_is_a_422_that_writes_nothing(
    client: TestClient, auth, overrides: dict, field: str
) -> None:
    body = {key: value for key, value in handoff_body(**overrides).items() if value is not MISSING}
    error = assert_error(post(client, auth("engineer"), body), 422, "validation_error")
    assert any(field in item["loc"] for item in error["fields"]), error
    assert_nothing_written(client, auth)


@pytest.mark.parametrize(
    "content",
    [b"{", b'{"session_id": "s",}', b"", b"null", b"[]", b'"text"', b"42", b"\xff\xfe{}"],
    ids=["truncated", "trailing-comma", "empty", "null", "array", "string", "number", "bad-utf8"],
)
def test_malformed_json_is_a_422(client: TestClient, auth, content: bytes) -> None:
    headers = {**auth("engineer"), "Content-Type": "application/json"}
    response = client.post(HANDOFFS, content=content, headers=headers)
    assert_error(response, 422, "validation_error")
    assert_nothing_written(client, auth)


def test_a_non_json_content_type_is_refused(client: TestClient, auth) -> None:
    headers = {**auth("engineer"), "Content-Type": "text/plain"}
    response = client.post(HANDOFFS, content=b"session_id=s", headers=headers)
    assert_error(response, 422, "validation_error")
    assert_nothing_written(client, auth)


# --- 413 -------------------------------------------------------------------------


def oversized_body() -> dict[str, Any]:
    """A body that is valid except for its size (over 256 KiB)."""
    messages = [{"role": "user", "content": "x" * 1_000} for _ in range(300)]
    return handoff_body(snapshot=with_snapshot(transcript=messages))


def test_body_over_256_kib_is_413_and_writes_nothing(client: TestClient, auth) -> None:
    response = post(client, auth("engineer"), oversized_body())
    assert_error(response, 413, "payload_too_large")
    assert_nothing_written(client, auth)


def test_streamed_body_over_256_kib_without_content_length_is_413(client: TestClient, auth) -> None:
    chunks = iter([b'{"session_id": "s", "engineer_notes": "', b"x" * MAX_BODY, b'"}'])
    headers = {**auth("engineer"), "Content-Type": "application/json"}
    response = client.post(HANDOFFS, content=chunks, headers=headers)
    assert_error(response, 413, "payload_too_large")
    assert_nothing_written(client, auth)


def body_of_exactly(size: int) -> bytes:
    """A valid create body of ``size`` bytes (the last transcript message is trimmed)."""
    messages = [{"role": "user", "content": "x" * 20_000} for _ in range(14)]
    body = handoff_body(snapshot=with_snapshot(transcript=messages))
    excess = len(json.dumps(body).encode()) - size
    assert 0 <= excess <= 20_000
    messages[-1]["content"] = "x" * (20_000 - excess)
    encoded = json.dumps(body).encode()
    assert len(encoded) == size
    return encoded


@pytest.mark.parametrize(("size", "status"), [(MAX_BODY, 201), (MAX_BODY + 1, 413)])
def test_the_limit_is_256_kib_exactly(client: TestClient, auth, size: int, status: int) -> None:
    headers = {**auth("engineer"), "Content-Type": "application/json"}
    response = client.post(HANDOFFS, content=body_of_exactly(size), headers=headers)
    assert response.status_code == status, response.text
    assert len(list_all(client, auth("admin"))) == (1 if status == 201 else 0)


# --- Idempotency-Key -------------------------------------------------------------


def test_retry_with_the_same_idempotency_key_returns_the_first_response(
    client: TestClient, auth
) -> None:
    headers = {**auth("engineer"), "Idempotency-Key": "key-1"}
    first = post(client, headers, handoff_body())
    second = post(client, headers, handoff_body())

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert [item["id"] for item in list_all(client, auth("admin"))] == [first.json()["id"]]
    assert event_types(client, headers, first.json()["id"]) == ["handoff_created"]


def test_reusing_an_idempotency_key_with_another_body_is_a_422(client: TestClient, auth) -> None:
    headers = {**auth("engineer"), "Idempotency-Key": "key-1"}
    first = post(client, headers, handoff_body()).json()

    response = post(client, headers, handoff_body("sess-2"))
    assert_error(response, 422, "idempotency_key_reused")
    assert [item["id"] for item in list_all(client, auth("admin"))] == [first["id"]]


def test_idempotency_keys_belong_to_their_caller(client: TestClient, auth) -> None:
    key = {"Idempotency-Key": "shared-key"}
    mine = post(client, {**auth("engineer", sub="u-1"), **key}, handoff_body("sess-1")).json()
    theirs = post(client, {**auth("engineer", sub="u-2"), **key}, handoff_body("sess-2")).json()
    assert mine["id"] != theirs["id"]
    assert (mine["created_by_id"], theirs["created_by_id"]) == ("u-1", "u-2")


def test_an_idempotency_key_over_255_characters_is_a_422(client: TestClient, auth) -> None:
    headers = {**auth("engineer"), "Idempotency-Key": "k" * 256}
    assert_error(post(client, headers, handoff_body()), 422, "invalid_idempotency_key")
    assert_nothing_written(client, auth)


# --- one open handoff per session ------------------------------------------------


def test_a_second_handoff_for_a_pending_session_is_a_409(client: TestClient, auth) -> None:
    first = create(client, auth("engineer"))
    response = post(client, auth("engineer", sub="u-other"), handoff_body(priority="urgent"))
    error = assert_error(response, 409, "session_already_escalated")
    assert error["handoff_id"] == first["id"]
    assert list_all(client, auth("admin")) == [first]


def test_a_second_handoff_for_a_claimed_session_is_a_409(client: TestClient, auth) -> None:
    first = create(client, auth("engineer"))
    claimed = client.post(f"{HANDOFFS}/{first['id']}/claim", headers=auth("senior"))
    assert claimed.status_code == 200
    assert_error(post(client, auth("engineer"), handoff_body()), 409, "session_already_escalated")
    assert [item["id"] for item in list_all(client, auth("admin"))] == [first["id"]]


@pytest.mark.parametrize("closing", ["resolve", "cancel"])
def test_a_session_may_escalate_again_once_closed(client: TestClient, auth, closing: str) -> None:
    first = create(client, auth("engineer"))
    if closing == "resolve":
        client.post(f"{HANDOFFS}/{first['id']}/claim", headers=auth("senior"))
        response = client.post(
            f"{HANDOFFS}/{first['id']}/resolve",
            json={"resolution_notes": "Raised the memory limit."},
            headers=auth("senior"),
        )
    else:
        response = client.post(f"{HANDOFFS}/{first['id']}/cancel", headers=auth("engineer"))
    assert response.status_code == 200, response.text

    second = create(client, auth("engineer"))
    assert second["id"] != first["id"]
    assert second["session_id"] == first["session_id"]


def test_the_same_session_id_in_another_org_is_independent(client: TestClient, auth) -> None:
    ours = create(client, auth("engineer", org="acme"))
    theirs = create(client, auth("engineer", org="globex"))
    assert (ours["org_id"], theirs["org_id"]) == ("acme", "globex")
