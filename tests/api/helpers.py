"""Small helpers shared by the API tests."""

from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

from tests.conftest import handoff_body

HANDOFFS = "/api/v1/handoffs"


def assert_error(response: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with a JSON ``{"error", "detail", ...}`` body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("detail"), str) and body["detail"]
    if code is not None:
        assert body["error"] == code, body
    return body


def create(
    client: TestClient, headers: dict[str, str], session_id: str = "sess-1", **overrides: Any
) -> dict[str, Any]:
    """Create a handoff (asserting 201) and return it."""
    response = client.post(HANDOFFS, json=handoff_body(session_id, **overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def with_snapshot(**changes: Any) -> dict[str, Any]:
    """The default snapshot with some fields replaced."""
    snapshot = dict(handoff_body()["snapshot"])  # type: ignore[arg-type]
    snapshot.update(changes)
    return snapshot


def get(client: TestClient, headers: dict[str, str], handoff_id: str) -> dict[str, Any]:
    response = client.get(f"{HANDOFFS}/{handoff_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def history(client: TestClient, headers: dict[str, str], handoff_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{HANDOFFS}/{handoff_id}/history", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


#: What an event's handoff leaves out of the full handoff (docs/events.md).
LONG_TEXT = ("engineer_notes", "resolution_notes", "ai_assessment_data")


def slim(handoff: dict[str, Any]) -> dict[str, Any]:
    """What an event carries of ``handoff`` (as ``GET /handoffs/{id}`` answers it):
    no long text, the snapshot's tried steps and transcript counted."""
    kept = {key: value for key, value in handoff.items() if key not in LONG_TEXT}
    snapshot = dict(handoff["snapshot"])
    tried, transcript = snapshot.pop("tried_steps"), snapshot.pop("transcript")
    snapshot["tried_step_count"] = len(tried)
    snapshot["transcript_message_count"] = len(transcript or [])
    return {**kept, "snapshot": snapshot}


def event_types(client: TestClient, headers: dict[str, str], handoff_id: str) -> list[str]:
    return [event["type"] for event in history(client, headers, handoff_id)]


def state(client: TestClient, headers: dict[str, str], handoff_id: str) -> tuple[Any, ...]:
    """Everything a rejected request must leave alone: the handoff and its history."""
    return get(client, headers, handoff_id), history(client, headers, handoff_id)


def list_all(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get(HANDOFFS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]
