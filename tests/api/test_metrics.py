"""``/metrics`` exposes every metric family docs/operations.md promises, with values
that move when the thing they count happens."""

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import Engine

from services.api.app import create_app
from shared.core.settings import Settings
from testkit.procs import poll
from tests.conftest import TokenFactory, handoff_body

LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)


@pytest.fixture
def client(settings: Settings, engine: Engine, redis: Redis) -> Iterator[TestClient]:
    """Requests from loopback, the one place ``/metrics`` answers without a token."""
    with TestClient(create_app(settings), client=LOOPBACK) as test_client:
        yield test_client


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
        "escalations_webhook_deliveries_total",
        "escalations_webhook_try_duration_seconds",
        "escalations_webhook_delivery_latency_seconds",
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


def test_the_notifications_queue_depth_counts_waiting_deliveries(
    client: TestClient, auth: TokenFactory
) -> None:
    """No worker runs here: the API's dispatcher enqueues the delivery and it waits."""
    body = {"url": "https://93.184.215.14/hook", "events": ["handoff_created"]}
    assert client.post("/api/v1/webhooks", json=body, headers=auth("admin")).status_code == 201
    client.post("/api/v1/handoffs", json=handoff_body(), headers=auth("engineer"))
    poll(
        lambda: (
            sample(client.get("/metrics").text, "escalations_queue_depth", queue="notifications")
            == 1
        ),
        timeout=5,
        what="the delivery in the notifications queue",
    )


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


def test_events_carry_a_server_made_request_id_not_the_callers(
    client: TestClient, auth: TokenFactory
) -> None:
    created = client.post(
        "/api/v1/handoffs",
        json=handoff_body(),
        headers={**auth("engineer"), "X-Request-ID": "ceo-approved-this"},
    )
    assert created.headers["x-request-id"] == "ceo-approved-this"  # still echoed
    history = client.get(
        f"/api/v1/handoffs/{created.json()['id']}/history", headers=auth("engineer")
    )
    stored = history.json()["items"][0]["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", stored), stored


def test_without_a_caller_id_the_echoed_id_is_the_stored_one(
    client: TestClient, auth: TokenFactory
) -> None:
    created = client.post("/api/v1/handoffs", json=handoff_body(), headers=auth("engineer"))
    history = client.get(
        f"/api/v1/handoffs/{created.json()['id']}/history", headers=auth("engineer")
    )
    assert history.json()["items"][0]["request_id"] == created.headers["x-request-id"]


def test_event_stream_requests_are_counted_under_their_path(client: TestClient) -> None:
    client.get("/api/v1/events")  # no token: 401, without opening a stream
    text = client.get("/metrics").text
    labels = {"method": "GET", "route": "/api/v1/events", "status": "401"}
    assert sample(text, "escalations_http_requests_total", **labels) >= 1


# --- who may read /metrics ------------------------------------------------------------


def metrics_client(settings: Settings, address: tuple[str, int], **changes: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=changes)), client=address)


def test_metrics_answer_loopback_without_a_token(settings: Settings) -> None:
    with metrics_client(settings, LOOPBACK) as client:
        assert client.get("/metrics").status_code == 200


def test_metrics_refuse_other_clients_without_a_token(settings: Settings) -> None:
    with metrics_client(settings, REMOTE) as client:
        response = client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["error"] == "metrics_forbidden"


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded"])
def test_a_forwarded_request_is_not_local(settings: Settings, header: str) -> None:
    """A proxy on this host (or a client naming 127.0.0.1 to a trusting one) is not a scraper."""
    with metrics_client(settings, LOOPBACK) as client:
        response = client.get("/metrics", headers={header: "127.0.0.1"})
    assert response.status_code == 403
    assert response.json()["error"] == "metrics_forbidden"


@pytest.mark.parametrize("address", [LOOPBACK, REMOTE])
def test_a_metrics_token_is_needed_from_anywhere_once_set(
    settings: Settings, address: tuple[str, int]
) -> None:
    token = "scrape-" + "s" * 24
    with metrics_client(settings, address, metrics_token=token) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            response = client.get("/metrics", headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["error"] == "metrics_unauthorized"
        granted = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert granted.status_code == 200
    assert "# TYPE escalations_http_requests_total " in granted.text


# --- API docs -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_api_docs_are_off_by_default(settings: Settings, path: str) -> None:
    response = metrics_client(settings, LOOPBACK).get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_api_docs_when_turned_on(settings: Settings, path: str) -> None:
    assert metrics_client(settings, REMOTE, api_docs=True).get(path).status_code == 200
