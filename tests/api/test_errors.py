"""Domain errors become responses by their class chain (services/api/errors.py):
an unmapped subclass gets its nearest mapped ancestor's status, a bare
``DomainError`` is a 400, never a 500; the middleware's 413 is built by the
same function as every other error."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.errors import STATUS_BY_ERROR, error_response, errors, install_error_handlers
from services.api.middleware import BodySizeLimit
from shared.core import errors as domain


class NewKindOfError(domain.DomainError):
    """A domain error nobody mapped."""

    code = "new_kind"


class HandoffGone(domain.NotFound):
    code = "handoff_gone"


class TooEager(domain.RateLimited):
    pass


class Ambiguous(domain.Conflict, domain.Forbidden):
    code = "ambiguous"


RAISED = {
    "bare": domain.DomainError("Something the domain refused."),
    "new-kind": NewKindOfError("Refused for a new reason."),
    "gone": HandoffGone("It went away."),
    "eager": TooEager("Slow down.", limit="creates", retry_after=7),
    "ambiguous": Ambiguous("Two parents."),
}


@pytest.fixture
def app_client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=10)

    @app.get("/raise/{name}")
    def raise_it(name: str) -> None:
        raise RAISED[name]

    @app.post("/echo")
    def echo() -> dict[str, str]:
        return {}

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("bare", 400, "domain_error"),
        ("new-kind", 400, "new_kind"),
        ("gone", 404, "handoff_gone"),
        ("eager", 429, "rate_limited"),
        ("ambiguous", 409, "ambiguous"),  # the first mapped class of its MRO
    ],
)
def test_an_error_gets_its_nearest_mapped_ancestors_status(
    app_client: TestClient, name: str, status: int, code: str
) -> None:
    response = app_client.get(f"/raise/{name}")
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert response.json()["detail"] == str(RAISED[name])


def test_a_subclass_of_a_limit_error_keeps_its_retry_after(app_client: TestClient) -> None:
    assert app_client.get("/raise/eager").headers["retry-after"] == "7"


def test_every_mapped_status_is_a_client_or_availability_error() -> None:
    assert STATUS_BY_ERROR[domain.DomainError] == 400
    assert all(400 <= status < 500 or status == 503 for status in STATUS_BY_ERROR.values())


def test_the_413_is_the_shared_error_shape(app_client: TestClient) -> None:
    response = app_client.post("/echo", content=b"x" * 11)
    expected = error_response(413, "payload_too_large", "Request bodies are limited to 10 bytes.")
    assert response.status_code == 413
    assert response.content == expected.body
    assert response.headers["content-type"] == expected.headers["content-type"]


def test_the_openapi_error_helper_lives_with_the_mapping() -> None:
    assert set(errors(404)) == {401, 422, 404}
    assert errors(409, conflict_model=int)[409] == {"model": int}
