"""Identity: HS256 JWTs with ``exp``, known roles and every claim, or 401."""

import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from jwt.warnings import InsecureKeyLengthWarning
from pydantic import ValidationError
from redis import Redis
from sqlalchemy import Engine
from typer.testing import CliRunner

from services.api.app import create_app
from services.cli import app as cli_app
from shared.auth.tokens import STREAM_AUDIENCE, decode_token
from shared.core.errors import NotAuthenticated
from shared.core.models import Role
from shared.core.settings import Settings, get_settings
from tests import conftest
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
    token = signed(claims(exp=datetime.now(UTC) - timedelta(seconds=60)))
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
    principal = decode_token(result.output.strip(), settings=get_settings())
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


# --- hardening: leeway, lifetime, rotation, issuer and audience ---------------------

NEW_SECRET = "new-secret-" + "9876543210" * 4
NOW = datetime.now


def hardened(**changes: Any) -> Settings:
    """Settings as the tests' app gets them, with some JWT settings changed."""
    base: dict[str, Any] = {"database_url": "sqlite://", "redis_url": "", "jwt_secret": TEST_SECRET}
    return Settings(**{**base, **changes})


def accepts(settings: Settings, token: str) -> bool:
    try:
        decode_token(token, settings=settings)
    except NotAuthenticated:
        return False
    return True


@pytest.fixture
def app_with(
    database_url: str, engine: Engine, redis: Redis
) -> Iterator[Callable[..., TestClient]]:
    """``app_with(**settings)``: a started app on the test database and Redis."""
    stack = ExitStack()

    def start(**changes: Any) -> TestClient:
        settings = Settings(
            database_url=database_url,
            redis_url=conftest.REDIS_URL,  # set at start-up: read it at call time
            **{"jwt_secret": TEST_SECRET, **changes},
        )
        return stack.enter_context(TestClient(create_app(settings)))

    with stack:
        yield start


def test_leeway_accepts_a_token_expired_5_s_ago_and_refuses_one_expired_60_s_ago(
    client: TestClient,
) -> None:
    recent = signed(claims(exp=NOW(UTC) - timedelta(seconds=5)))
    assert client.get(HANDOFFS, headers=bearer(recent)).status_code == 200
    assert_unauthenticated(client, bearer(signed(claims(exp=NOW(UTC) - timedelta(seconds=60)))))
    assert not accepts(hardened(jwt_leeway_seconds=0), recent)


def test_a_token_living_longer_than_the_maximum_is_refused(client: TestClient) -> None:
    day = timedelta(seconds=86_400)
    within = signed(claims(exp=NOW(UTC) + day - timedelta(minutes=5)))
    assert client.get(HANDOFFS, headers=bearer(within)).status_code == 200
    assert_unauthenticated(client, bearer(signed(claims(exp=NOW(UTC) + day + timedelta(hours=1)))))
    # Issued an hour ago for a day and an hour: within a day from now, too long from its iat.
    issued_long = claims(
        iat=NOW(UTC) - timedelta(hours=1), exp=NOW(UTC) + day - timedelta(minutes=1)
    )
    assert_unauthenticated(client, bearer(signed(issued_long)))
    assert not accepts(hardened(jwt_max_lifetime_seconds=600), signed(claims()))  # 1 h > 10 min


@pytest.mark.parametrize(
    "exp",
    [str(int(datetime.now(UTC).timestamp()) + 600), 1e308, True, [1], None],
    ids=["string", "1e308", "bool", "list", "null"],
)
def test_exp_must_be_a_json_number_within_the_maximum(client: TestClient, exp: Any) -> None:
    payload = claims()
    payload["exp"] = exp
    assert_unauthenticated(client, bearer(signed(payload)))


@pytest.mark.parametrize("iat", ["0", False, 1e308], ids=["string", "bool", "1e308"])
def test_iat_when_present_must_be_a_plausible_number(client: TestClient, iat: Any) -> None:
    assert_unauthenticated(client, bearer(signed(claims(iat=iat))))


def test_secret_rotation_old_and_new_accepted_then_only_the_new(
    app_with: Callable[..., TestClient],
) -> None:
    old_token, new_token = signed(claims()), signed(claims(), secret=NEW_SECRET)
    rotating = app_with(jwt_secret=NEW_SECRET, jwt_previous_secrets=[TEST_SECRET])
    assert rotating.get(HANDOFFS, headers=bearer(old_token)).status_code == 200
    assert rotating.get(HANDOFFS, headers=bearer(new_token)).status_code == 200
    rotated = app_with(jwt_secret=NEW_SECRET)  # the previous secret retired
    assert rotated.get(HANDOFFS, headers=bearer(new_token)).status_code == 200
    assert_unauthenticated(rotated, bearer(old_token))


def test_previous_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    other = "other-secret-" + "x" * 32
    for raw in (f'["{NEW_SECRET}", "{other}"]', f"{NEW_SECRET}, {other}"):
        monkeypatch.setenv("ESCALATIONS_JWT_PREVIOUS_SECRETS", raw)
        assert hardened().jwt_previous_secrets == [NEW_SECRET, other]
    monkeypatch.setenv("ESCALATIONS_JWT_PREVIOUS_SECRETS", "too-short")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        hardened()


def test_audience_may_not_be_the_stream_cookies() -> None:
    with pytest.raises(ValidationError, match="JWT_AUDIENCE"):
        hardened(jwt_audience=STREAM_AUDIENCE)


def test_issuer_and_audience_are_required_when_set(app_with: Callable[..., TestClient]) -> None:
    api = app_with(jwt_issuer="https://id.example", jwt_audience="escalations-api")
    expected = {"iss": "https://id.example", "aud": "escalations-api"}
    assert api.get(HANDOFFS, headers=bearer(signed(claims(**expected)))).status_code == 200
    for changes in (
        {"iss": None},
        {"iss": "https://evil.example"},
        {"aud": None},
        {"aud": "another-api"},
        {"aud": STREAM_AUDIENCE},
    ):
        token = signed(claims(**{**expected, **changes}))
        assert_unauthenticated(api, bearer(token))


def test_without_an_audience_setting_a_token_with_an_audience_is_refused(
    client: TestClient,
) -> None:
    assert_unauthenticated(client, bearer(signed(claims(aud="escalations-api"))))
    assert client.get(HANDOFFS, headers=bearer(signed(claims(iss="anyone")))).status_code == 200


@pytest.mark.usefixtures("cli_env")
def test_cli_refuses_a_lifetime_over_the_maximum() -> None:
    result = CliRunner().invoke(cli_app, [*TOKEN_ARGS, "--org", "acme", "--ttl-hours", "25"])
    assert result.exit_code == 2
    assert "at most 24 hours" in result.output and "MAX_LIFETIME" in result.output
    assert "eyJ" not in result.output


@pytest.mark.usefixtures("cli_env")
def test_cli_token_carries_the_configured_issuer_and_audience(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ESCALATIONS_JWT_ISSUER", "https://id.example")
    monkeypatch.setenv("ESCALATIONS_JWT_AUDIENCE", "escalations-api")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli_app, [*TOKEN_ARGS, "--org", "acme", "--ttl-hours", "1"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert decode_token(token, settings=get_settings()).user_id == "u-42"
    unverified = jwt.decode(token, options={"verify_signature": False})
    assert (unverified["iss"], unverified["aud"]) == ("https://id.example", "escalations-api")
    assert unverified["exp"] - unverified["iat"] == 3600
