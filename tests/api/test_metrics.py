"""``/metrics`` exposes every metric family the README promises, with values
that move when the thing they count happens."""

import re

from fastapi.testclient import TestClient

from tests.conftest import TokenFactory, handoff_body


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if match and match[1] == name:
            got = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
            if got == wanted:
                return float(match[3])
    return 0.0


def test_every_family_is_exposed(client: TestClient) -> None:
    text = client.get("/metrics").text
    for family in (
        "escalations_http_requests_total",
        "escalations_http_request_duration_seconds",
        "escalations_sse_open_streams",
        "escalations_events_published_total",
        "escalations_events_delivered_total",
        "escalations_claims_total",
        "escalations_assessments_total",
        "escalations_assessment_duration_seconds",
        "escalations_queue_depth",
        "escalations_queue_failed_jobs",
    ):
        assert f"# TYPE {family} " in text, family


def test_requests_claims_and_queue_depth_move(client: TestClient, auth: TokenFactory) -> None:
    before = client.get("/metrics").text
    created = client.post("/api/v1/handoffs", json=handoff_body(), headers=auth("engineer"))
    handoff_id = created.json()["id"]
    client.post(f"/api/v1/handoffs/{handoff_id}/claim", headers=auth("senior", sub="a"))
    client.post(f"/api/v1/handoffs/{handoff_id}/claim", headers=auth("senior", sub="b"))
    after = client.get("/metrics").text

    route = {"method": "POST", "route": "/api/v1/handoffs"}
    assert sample(after, "escalations_http_requests_total", **route, status="201") == (
        sample(before, "escalations_http_requests_total", **route, status="201") + 1
    )
    claim_route = {"method": "POST", "route": "/api/v1/handoffs/{handoff_id}/claim"}
    assert sample(after, "escalations_http_requests_total", **claim_route, status="409") >= 1
    assert sample(after, "escalations_http_request_duration_seconds_count", **route) >= 1
    for outcome in ("won", "lost"):
        assert sample(after, "escalations_claims_total", outcome=outcome) == (
            sample(before, "escalations_claims_total", outcome=outcome) + 1
        )
    assert sample(after, "escalations_queue_depth", queue="assessments") == 1


def test_unknown_paths_share_one_label(client: TestClient) -> None:
    client.get("/no/such/path/123")
    text = client.get("/metrics").text
    assert (
        sample(
            text, "escalations_http_requests_total", method="GET", route="unmatched", status="404"
        )
        >= 1
    )
    assert "/no/such/path/123" not in text


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])


def test_events_carry_the_request_id(client: TestClient, auth: TokenFactory) -> None:
    created = client.post(
        "/api/v1/handoffs",
        json=handoff_body(),
        headers={**auth("engineer"), "X-Request-ID": "req-42"},
    )
    history = client.get(
        f"/api/v1/handoffs/{created.json()['id']}/history", headers=auth("engineer")
    )
    assert history.json()["items"][0]["request_id"] == "req-42"
