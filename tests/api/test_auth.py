"""Identity: HS256 JWTs with ``exp``, known roles and every claim, or 401."""

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from jwt.warnings import InsecureKeyLengthWarning
from typer.testing import CliRunner

from services.cli import app as cli_app
from shared.auth import decode_token
from shared.models import Role
from shared.settings import get_settings
from tests.api.helpers import HANDOFFS, assert_error, create
from tests.conftest import TEST_SECRET, handoff_body

ANY_ID = "00000000-0000-4000-8000-000000000000"

#: Every route of the API table that is built; each must refuse a missing identity.
ROUTES = [
    ("POST", HANDOFFS, handoff_body()),
    ("GET", HANDOFFS, None),
    ("GET", f"{HANDOFFS}/{ANY_ID}", None),
    ("GET", f"{HANDOFFS}/{ANY_ID}/history", None),
    ("POST", f"{HANDOFFS}/{ANY_ID}/claim", None),
    ("POST", f"{HANDOFFS}/{ANY_ID}/release", None),
    ("POST", f"{HANDOFFS}/{ANY_ID}/resolve", {"resolution_notes": "done"}),
    ("POST", f"{HANDOFFS}/{ANY_ID}/cancel", None),
]


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims; a change to ``None`` removes the claim."""
    base: dict[str, Any] = {
        "sub": "u-1",
        "name": "Ada Engineer",
        "role": "engineer",
        "org": "acme",
        "exp": datetime.now(UTC) + timedelta(hours=1),
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(
    payload: dict[str, Any], *, secret: str | None = TEST_SECRET, algorithm: str = "HS256"
) -> str:
    with warnings.catch_warnings():
        # The test secret is shorter than HS512 recommends; signing with it is the point.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(payload, secret, algorithm=algorithm)


def assert_unauthenticated(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get(HANDOFFS, headers=headers)
    assert_error(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_valid_token_is_accepted(client: TestClient) -> None:
    response = client.get(HANDOFFS, headers=bearer(signed(claims())))
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_needs_a_token(
    client: TestClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert_error(client.request(method, path, json=body), 401, "not_authenticated")


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Bearer not-a-jwt",
        "Basic dXNlcjpwYXNz",
        f"Token {signed(claims())}",
    ],
    ids=["empty", "no-token", "blank-token", "garbage", "basic", "other-scheme"],
)
def test_malformed_authorization_header(client: TestClient, authorization: str) -> None:
    assert_unauthenticated(client, {"Authorization": authorization})


def test_expired_token(client: TestClient) -> None:
    token = signed(claims(exp=datetime.now(UTC) - timedelta(seconds=5)))
    assert_unauthenticated(client, bearer(token))


def test_token_without_exp(client: TestClient) -> None:
    assert_unauthenticated(client, bearer(signed(claims(exp=None))))


def test_unsigned_alg_none_token(client: TestClient) -> None:
    assert_unauthenticated(client, bearer(signed(claims(), secret=None, algorithm="none")))


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_another_algorithm_with_the_right_secret(client: TestClient, algorithm: str) -> None:
    assert_unauthenticated(client, bearer(signed(claims(), algorithm=algorithm)))


def test_bad_signature(client: TestClient) -> None:
    token = signed(claims(), secret="another-secret-" + "x" * 40)
    assert_unauthenticated(client, bearer(token))


def test_tampered_payload(client: TestClient) -> None:
    header, _, signature = signed(claims()).split(".")
    forged_payload = signed(claims(role="admin")).split(".")[1]
    assert_unauthenticated(client, bearer(f"{header}.{forged_payload}.{signature}"))


@pytest.mark.parametrize("role", ["superuser", "Senior", "", "owner"])
def test_unknown_role(client: TestClient, role: str) -> None:
    assert_unauthenticated(client, bearer(signed(claims(role=role))))


@pytest.mark.parametrize("claim", ["sub", "name", "role", "org"])
def test_missing_claim(client: TestClient, claim: str) -> None:
    assert_unauthenticated(client, bearer(signed(claims(**{claim: None}))))


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": 42},
        {"org": ""},
        {"name": ["Ada"]},
        {"org": "x" * 129},
        {"role": {"a": 1}},
        {"sub": "u\x00"},
        {"org": "acme\x00"},
    ],
    ids=["numeric-sub", "empty-org", "list-name", "long-org", "object-role", "nul-sub", "nul-org"],
)
def test_claims_of_the_wrong_shape(client: TestClient, changes: dict[str, Any]) -> None:
    assert_unauthenticated(client, bearer(signed(claims(**changes))))


def test_rejected_token_creates_nothing(client: TestClient, auth) -> None:
    response = client.post(HANDOFFS, json=handoff_body(), headers=bearer(signed(claims(exp=None))))
    assert_error(response, 401)
    assert client.get(HANDOFFS, headers=auth("engineer")).json()["items"] == []


def test_identity_comes_from_the_token(client: TestClient) -> None:
    headers = bearer(signed(claims(sub="u-77", name="Grace Junior", org="globex")))
    handoff = create(client, headers)
    assert (handoff["created_by_id"], handoff["created_by_name"], handoff["org_id"]) == (
        "u-77",
        "Grace Junior",
        "globex",
    )


# --- `escalations token` -----------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ESCALATIONS_JWT_SECRET", TEST_SECRET)
    monkeypatch.delenv("ESCALATIONS_DEV_MODE", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


TOKEN_ARGS = ["token", "--sub", "u-42", "--name", "Dana Senior", "--role", "senior"]


@pytest.mark.usefixtures("cli_env")
def test_cli_token_decodes_with_the_configured_secret() -> None:
    result = CliRunner().invoke(cli_app, [*TOKEN_ARGS, "--org", "acme"])
    assert result.exit_code == 0, result.output
    principal = decode_token(result.output.strip(), secret=TEST_SECRET)
    assert (principal.user_id, principal.name, principal.role, principal.org_id) == (
        "u-42",
        "Dana Senior",
        Role.senior,
        "acme",
    )
    header = jwt.get_unverified_header(result.output.strip())
    assert header["alg"] == "HS256"
    exp = jwt.decode(result.output.strip(), TEST_SECRET, algorithms=["HS256"])["exp"]
    assert exp > datetime.now(UTC).timestamp()


@pytest.mark.usefixtures("cli_env")
def test_cli_token_is_accepted_by_the_api(client: TestClient) -> None:
    result = CliRunner().invoke(cli_app, [*TOKEN_ARGS, "--org", "acme"])
    assert result.exit_code == 0, result.output
    response = client.get(HANDOFFS, headers=bearer(result.output.strip()))
    assert response.status_code == 200, response.text


@pytest.mark.usefixtures("cli_env")
def test_cli_refuses_an_unknown_role() -> None:
    args = ["token", "--sub", "u-1", "--name", "N", "--role", "wizard", "--org", "acme"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 2
    assert "eyJ" not in result.output  # no token printed


def test_cli_refuses_to_sign_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESCALATIONS_JWT_SECRET", raising=False)
    monkeypatch.delenv("ESCALATIONS_DEV_MODE", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, [*TOKEN_ARGS, "--org", "acme"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "ESCALATIONS_JWT_SECRET" in result.output
