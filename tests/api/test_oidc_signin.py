"""The console's sign-in at a real ``oidc-provider-mock`` process, through the
API as a backend for the frontend: Authorization Code + PKCE (S256), ``state``
bound to the browser by a cookie, ``nonce`` checked, the API's own token from
the session cookie, renewal that asks the provider again, and sign-out that
ends the session and names the provider's ``end_session_endpoint``."""

import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import Engine

from services.api.app import create_app
from shared.auth.tokens import decode_token
from testkit import log_leaks
from testkit.procs import Proc, free_port
from tests.api.helpers import assert_error
from tests.api.test_oidc import oidc_settings, provider  # noqa: F401  (the module's provider)
from tests.identity import CLIENT_SECRET, provider_url, set_user

PUBLIC_URL = "http://testserver"


def make_client(issuer: str, database_url: str, **extra: Any) -> TestClient:
    settings = oidc_settings(
        database_url, issuer, oidc_client_secret=CLIENT_SECRET, public_url=PUBLIC_URL, **extra
    )
    return TestClient(create_app(settings), follow_redirects=False)


@pytest.fixture
def client(provider: Proc, database_url: str, engine: Engine, redis: Redis) -> Iterator[TestClient]:  # noqa: F811
    with make_client(provider_url(provider), database_url) as test_client:
        yield test_client


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def authorize_at_provider(client: TestClient, sub: str) -> str:
    """``GET /auth/login``, then the user picks ``sub`` at the provider: the
    provider's redirect back to the API's callback."""
    login = client.get("/auth/login")
    assert login.status_code == 302, login.text
    params = query_of(login.headers["location"])
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["redirect_uri"] == f"{PUBLIC_URL}/auth/callback"
    assert params["state"] and params["nonce"] and params["state"] != params["nonce"]
    authorize_url = login.headers["location"].split("?")[0]
    picked = httpx.post(authorize_url, params=params, data={"sub": sub})
    assert picked.status_code == 302, picked.text
    back = picked.headers["location"]
    assert back.startswith(f"{PUBLIC_URL}/auth/callback?")
    return back


def sign_in(client: TestClient, sub: str = "dana") -> httpx.Response:
    return client.get(authorize_at_provider(client, sub).removeprefix(PUBLIC_URL))


def test_sign_in_renew_and_sign_out(client: TestClient, provider: Proc) -> None:  # noqa: F811
    done = sign_in(client)
    assert done.status_code == 303 and done.headers["location"] == f"{PUBLIC_URL}/"
    assert "escalations_console" in client.cookies
    first = client.post("/auth/session")
    assert first.status_code == 200, first.text
    token = log_leaks.register_secret(first.json()["token"])
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["id"], me["name"], me["role"], me["org_id"]) == (
        "dana",
        "Dana Senior",
        "senior",
        "acme",
    )
    settings = client.app.state.settings  # type: ignore[attr-defined]
    claims = decode_token(token, settings=settings)
    assert claims.expires_at is not None
    assert claims.expires_at - first.json()["expires_at"] == 0
    renewed = client.post("/auth/session")  # asks the provider again (refresh token)
    assert renewed.status_code == 200, renewed.text
    log_leaks.register_secret(renewed.json()["token"])

    out = client.post("/auth/logout")
    assert out.status_code == 200
    end_url = out.json()["end_session_url"]
    assert end_url.startswith(f"{provider_url(provider)}/oauth2/end_session?")
    end = query_of(end_url)
    assert end["post_logout_redirect_uri"] == f"{PUBLIC_URL}/"
    assert end["client_id"] == "escalations-console"
    assert "id_token_hint" not in end  # a token in a URL would reach the provider's access log
    assert "escalations_console" not in client.cookies
    assert_error(client.post("/auth/session"), 401, "not_authenticated")


def test_a_user_disabled_at_the_provider_is_out_at_the_next_renewal(
    client: TestClient,
    provider: Proc,  # noqa: F811
) -> None:
    sign_in(client)
    assert client.post("/auth/session").status_code == 200
    revoked = httpx.post(f"{provider_url(provider)}/users/dana/revoke-tokens")
    assert revoked.status_code == 204
    assert_error(client.post("/auth/session"), 401, "sign_in_failed")
    assert_error(client.post("/auth/session"), 401, "not_authenticated")  # the session ended


def test_a_callback_needs_this_browsers_state_once(client: TestClient) -> None:
    back = authorize_at_provider(client, "dana").removeprefix(PUBLIC_URL)
    params = query_of(back)
    forged = client.get("/auth/callback", params={**params, "state": "someone-elses"})
    assert forged.headers["location"] == f"{PUBLIC_URL}/#/signed-out?error=sign_in_failed"
    assert "escalations_console" not in client.cookies
    # The sign-in cookie was cleared with that failure: the real state no longer matches.
    again = client.get(back)
    assert again.headers["location"].endswith("error=sign_in_failed")
    # A fresh sign-in works, once.
    back = authorize_at_provider(client, "dana").removeprefix(PUBLIC_URL)
    assert client.get(back).headers["location"] == f"{PUBLIC_URL}/"
    client.cookies.delete("escalations_console")
    assert client.get(back).headers["location"].endswith("error=sign_in_failed")  # replayed
    refused = client.get("/auth/callback", params={"error": "access_denied", "state": "x"})
    assert refused.headers["location"].endswith("error=sign_in_failed")


def test_a_user_without_a_role_is_told_so(
    provider: Proc,  # noqa: F811
    database_url: str,
    engine: Engine,
    redis: Redis,
) -> None:
    issuer = provider_url(provider)
    set_user(issuer, {"sub": "cy", "name": "Cy", "groups": ["marketing"], "tenant": "acme"})
    with make_client(issuer, database_url, oidc_default_role="") as client:
        done = sign_in(client, "cy")
        assert done.headers["location"] == f"{PUBLIC_URL}/#/signed-out?error=no_role"
        assert "escalations_console" not in client.cookies


def test_sign_in_is_404_when_not_configured(client: TestClient, database_url: str) -> None:
    config = client.get("/console/config.json").json()
    assert config["sso"] == {"enabled": True, "display_name": "SSO"}
    settings = oidc_settings(
        database_url, "http://127.0.0.1:1", oidc_client_id=None, oidc_audience="api"
    )
    with TestClient(create_app(settings)) as bare:
        assert bare.get("/console/config.json").json()["sso"]["enabled"] is False
        assert_error(bare.get("/auth/login"), 404, "sso_not_configured")
        assert_error(bare.post("/auth/session"), 404, "sso_not_configured")


def test_without_redis_sign_in_is_503_not_500(
    provider: Proc,  # noqa: F811
    database_url: str,
    engine: Engine,
) -> None:
    settings = oidc_settings(
        database_url,
        provider_url(provider),
        oidc_client_secret=CLIENT_SECRET,
        public_url=PUBLIC_URL,
    ).model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})  # nobody there
    with TestClient(create_app(settings), follow_redirects=False) as client:
        assert_error(client.get("/auth/login"), 503, "redis_unavailable")
        client.cookies.set("escalations_console", "some-session", path="/auth")
        assert_error(client.post("/auth/session"), 503, "redis_unavailable")
