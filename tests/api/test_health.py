"""``/healthz``, ``/readyz`` and ``/metrics`` (outside ``/api/v1``, no token needed;
``/metrics`` from loopback: tests/api/test_metrics.py has who may read it)."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.core.settings import Settings
from tests.api.helpers import assert_error
from tests.conftest import REDIS_URL, TEST_SECRET, TokenFactory

UNUSED_REDIS = "redis://127.0.0.1:1/0"
UNUSED_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:1/escalations"


@pytest.fixture
def broken_client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[TestClient]:
    """An app whose dependencies named by ``request.param`` point at a closed port."""
    overrides = {"redis_url": UNUSED_REDIS, "database_url": UNUSED_POSTGRES}
    changes = {name: overrides[name] for name in request.param}
    with TestClient(create_app(settings.model_copy(update=changes))) as client:
        yield client


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_when_everything_answers(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.parametrize(
    ("broken_client", "failing"),
    [
        (["redis_url"], ["redis"]),
        (["database_url"], ["database"]),
        (["redis_url", "database_url"], ["database", "redis"]),
    ],
    indirect=["broken_client"],
    ids=["redis", "database", "both"],
)
def test_readyz_is_503_naming_what_does_not_answer(
    broken_client: TestClient, failing: list[str]
) -> None:
    body = assert_error(broken_client.get("/readyz"), 503, "not_ready")
    for name in ("database", "redis"):
        expected = "unavailable" if name in failing else "ok"
        assert body["checks"][name] == expected
        assert (name in body["detail"]) == (name in failing)


@pytest.mark.parametrize("broken_client", [["redis_url"]], indirect=True)
def test_healthz_checks_no_dependency(broken_client: TestClient) -> None:
    assert broken_client.get("/healthz").status_code == 200


def test_metrics_are_prometheus_text(settings: Settings) -> None:
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# HELP" in response.text and "# TYPE" in response.text


def test_unknown_paths_are_json_404(client: TestClient) -> None:
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_json_405(client: TestClient) -> None:
    assert_error(client.delete("/healthz"), 405, "method_not_allowed")


def test_a_database_outage_is_a_503_not_a_500(auth: TokenFactory) -> None:
    settings = Settings(
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
        redis_url=REDIS_URL,
        jwt_secret=TEST_SECRET,
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1/handoffs", headers=auth("senior"))
    assert response.status_code == 503
    assert response.json()["error"] == "database_unavailable"
