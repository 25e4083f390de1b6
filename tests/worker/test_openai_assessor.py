"""The ``openai`` assessor against a real HTTP stub of a chat-completions server."""

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.worker.assessors.base import AssessmentError, AssessmentRequest, PastResolution
from services.worker.assessors.openai import MAX_TRANSCRIPT_CHARS, OpenAIAssessor
from shared.core.settings import Settings
from shared.handoffs.models import ConfidenceTier
from testkit.openai_stub import GOOD_ANSWER, OpenAIStub
from tests.conftest import TEST_SECRET, handoff_body

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as running:
        yield running


def make_assessor(stub: OpenAIStub, *, api_key: str = "", timeout: float = 5.0) -> OpenAIAssessor:
    return OpenAIAssessor(
        base_url=stub.base_url, model="test-model", api_key=api_key, timeout=timeout
    )


def make_request(**snapshot_overrides: Any) -> AssessmentRequest:
    snapshot = handoff_body()["snapshot"]
    assert isinstance(snapshot, dict)
    snapshot = {**snapshot, **snapshot_overrides}
    past = PastResolution(
        handoff_id="h-old",
        problem_summary="Payments pods OOMKilled after a release",
        problem_domain="kubernetes",
        engineer_notes="Restarts did not help",
        tried_steps=["Restarted the deployment"],
        resolution_notes="Raised the memory limit from 512Mi to 1Gi",
    )
    return AssessmentRequest(
        handoff_id="h-1",
        priority="high",
        engineer_notes="Pods restart every few minutes after the deploy.",
        snapshot=snapshot,
        past_resolutions=[past],
    )


def answer(**overrides: Any) -> dict[str, Any]:
    return {**GOOD_ANSWER, **overrides}


def test_good_answer_becomes_the_result(stub: OpenAIStub) -> None:
    result = make_assessor(stub).assess(make_request())

    assert result.summary == GOOD_ANSWER["summary"]
    assert result.likely_causes == GOOD_ANSWER["likely_causes"]
    assert result.suggested_steps == GOOD_ANSWER["suggested_steps"]
    assert result.confidence is ConfidenceTier.medium


def test_request_carries_model_json_mode_and_the_handoff(stub: OpenAIStub) -> None:
    make_assessor(stub).assess(make_request())

    assert stub.request_count == 1
    body = stub.last_body
    assert body["model"] == "test-model"
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["role"] == "system" and "summary" in system["content"]
    assert user["role"] == "user"
    for expected in (
        "Checkout service crash-loops with OOMKilled",
        "Pods restart every few minutes after the deploy.",
        "never suggest these again",
        "Restarted the deployment",
        "Checked recent commits",
        "Why does checkout keep restarting?",
        "Raised the memory limit from 512Mi to 1Gi",
    ):
        assert expected in user["content"]
    assert "authorization" not in stub.last_headers


def test_api_key_is_sent_as_a_bearer_header(stub: OpenAIStub) -> None:
    make_assessor(stub, api_key="sk-test-123").assess(make_request())

    assert stub.last_headers["authorization"] == "Bearer sk-test-123"


def test_transcript_is_truncated_to_the_most_recent_messages(stub: OpenAIStub) -> None:
    transcript = [{"role": "user", "content": f"message {n} " + "x" * 1_000} for n in range(50)]

    make_assessor(stub).assess(make_request(transcript=transcript))

    content = stub.last_body["messages"][1]["content"]
    assert "message 49 " in content
    assert "message 0 " not in content
    assert "earlier messages omitted" in content
    assert len(content) < MAX_TRANSCRIPT_CHARS + 4_000


def test_fenced_json_is_accepted(stub: OpenAIStub) -> None:
    stub.set_answer("```json\n" + json.dumps(answer(confidence="high")) + "\n```")

    result = make_assessor(stub).assess(make_request())

    assert result.confidence is ConfidenceTier.high


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Here you go: " + json.dumps(GOOD_ANSWER), "not valid JSON"),
        ("```json\n" + json.dumps(GOOD_ANSWER) + "\n``` Hope it helps!", "not valid JSON"),
        (json.dumps([GOOD_ANSWER]), "not a JSON object"),
    ],
    ids=["prose-prefix", "text-after-fence", "array"],
)
def test_anything_but_one_object_is_rejected(stub: OpenAIStub, content: str, message: str) -> None:
    stub.set_answer(content)

    with pytest.raises(AssessmentError, match=message):
        make_assessor(stub).assess(make_request())


@pytest.mark.parametrize(
    "bad",
    [
        answer(confidence="certain"),
        answer(summary=""),
        answer(summary="   "),
        answer(likely_causes=["ok", ""]),
        answer(suggested_steps=[]),
        answer(suggested_steps="Raise the limit"),
        answer(likely_causes=[1, 2]),
        answer(confidence=1),
        answer(extra="not allowed"),
        {key: value for key, value in GOOD_ANSWER.items() if key != "summary"},
        answer(suggested_steps=["step"] * 11),
        answer(summary="x" * 2_001),
    ],
    ids=[
        "confidence-certain",
        "empty-summary",
        "blank-summary",
        "empty-cause",
        "no-steps",
        "steps-not-a-list",
        "causes-not-strings",
        "confidence-not-a-string",
        "extra-key",
        "missing-summary",
        "too-many-steps",
        "summary-too-long",
    ],
)
def test_invalid_answers_are_rejected(stub: OpenAIStub, bad: dict[str, Any]) -> None:
    stub.set_answer(bad)

    with pytest.raises(AssessmentError, match="LLM answer is invalid"):
        make_assessor(stub).assess(make_request())


def test_malformed_answer_fails(stub: OpenAIStub) -> None:
    stub.set_mode("malformed")

    with pytest.raises(AssessmentError, match="not valid JSON"):
        make_assessor(stub).assess(make_request())


def test_missing_choices_fails(stub: OpenAIStub) -> None:
    stub.set_mode("no_choices")

    with pytest.raises(AssessmentError, match="no choices"):
        make_assessor(stub).assess(make_request())


def test_server_error_fails_without_leaking_the_key(stub: OpenAIStub) -> None:
    stub.set_mode("error")

    with pytest.raises(AssessmentError, match="HTTP 500") as caught:
        make_assessor(stub, api_key="sk-secret-456").assess(make_request())
    assert "sk-secret-456" not in str(caught.value)


def test_timeout_fails_promptly(stub: OpenAIStub) -> None:
    stub.set_mode("slow", delay=10)
    started = time.monotonic()

    with pytest.raises(AssessmentError, match="timed out"):
        make_assessor(stub, timeout=0.5).assess(make_request())

    assert time.monotonic() - started < 3


def test_connection_refused_fails() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assessor = OpenAIAssessor(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout=2)

    with pytest.raises(AssessmentError, match="ConnectError"):
        assessor.assess(make_request())


def test_built_from_settings() -> None:
    settings = Settings(
        jwt_secret=TEST_SECRET,
        assessor="openai",
        llm_base_url="http://llm.internal:8000/v1/",
        llm_model="llama3.1",
        llm_api_key="sk-from-env",
        llm_timeout_seconds=12.5,
    )

    assessor = OpenAIAssessor.from_settings(settings)

    assert assessor.name == "openai:llama3.1"
    assert assessor.base_url == "http://llm.internal:8000/v1"
    assert assessor.timeout == 12.5
    assert "sk-from-env" not in repr(assessor)


@pytest.mark.slow
def test_stub_as_a_process_switches_mode_over_http() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "testkit.openai_stub", "--port", "0", "--mode", "error"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().removeprefix("listening on ")
        assessor = OpenAIAssessor(base_url=f"{url}/v1", model="m", timeout=5)
        with pytest.raises(AssessmentError, match="HTTP 500"):
            assessor.assess(make_request())

        switched = httpx.post(f"{url}/_stub/mode", json={"mode": "good"})
        assert switched.json() == {"mode": "good", "delay": 0.0, "failure_rate": 0.2}
        assert assessor.assess(make_request()).summary == GOOD_ANSWER["summary"]

        recorded = httpx.get(f"{url}/_stub/requests").json()
        assert recorded["count"] == 2
        assert recorded["last_body"]["model"] == "m"
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == 0
