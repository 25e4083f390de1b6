"""The browser's stream cookie: bounded by the bearer token it was made from,
named by a ``jti``, and revoked server-side by ``DELETE /events/session``."""

import time
from datetime import timedelta
from http.cookies import SimpleCookie

import jwt
from fastapi.testclient import TestClient
from redis import Redis

from shared.auth.tokens import STREAM_AUDIENCE, issue_token
from shared.core import keys
from shared.core.models import Role
from tests.api.helpers import assert_error
from tests.conftest import TEST_SECRET

SESSION = "/api/v1/events/session"
EVENTS = "/api/v1/events"
COOKIE = "escalations_stream"


def bearer_for(ttl: timedelta) -> tuple[str, int]:
    token = issue_token(
        secret=TEST_SECRET, sub="senior-1", name="Senior One", role=Role.senior, org="acme", ttl=ttl
    )
    return token, jwt.decode(token, options={"verify_signature": False})["exp"]


def open_session(client: TestClient, token: str) -> tuple[str, int]:
    """POST events/session; returns the cookie's token and its Max-Age."""
    response = client.post(SESSION, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204, response.text
    morsel = SimpleCookie(response.headers["set-cookie"])[COOKIE]
    return morsel.value, int(morsel["max-age"])


def stream_claims(cookie_token: str) -> dict:
    return jwt.decode(cookie_token, TEST_SECRET, algorithms=["HS256"], audience=STREAM_AUDIENCE)


def test_the_cookie_expires_no_later_than_the_bearer_token(client: TestClient) -> None:
    token, bearer_exp = bearer_for(timedelta(minutes=10))
    cookie_token, max_age = open_session(client, token)
    claims = stream_claims(cookie_token)
    assert claims["exp"] <= bearer_exp
    assert 0 < max_age <= 600 and max_age <= bearer_exp - time.time() + 1
    assert isinstance(claims["jti"], str) and claims["jti"]


def test_a_long_bearer_token_still_gets_the_cookie_ttl(client: TestClient) -> None:
    token, _ = bearer_for(timedelta(hours=20))
    cookie_token, max_age = open_session(client, token)
    assert 43_000 < max_age <= 43_200  # ESCALATIONS_STREAM_COOKIE_TTL_SECONDS, 12 h
    assert stream_claims(cookie_token)["exp"] - time.time() <= 43_200 + 1


def test_each_cookie_names_its_own_session(client: TestClient) -> None:
    token, _ = bearer_for(timedelta(hours=1))
    first, second = open_session(client, token)[0], open_session(client, token)[0]
    assert stream_claims(first)["jti"] != stream_claims(second)["jti"]


def test_a_revoked_cookie_is_refused(client: TestClient, redis: Redis) -> None:
    token, _ = bearer_for(timedelta(hours=1))
    cookie_token, _ = open_session(client, token)  # the client keeps the cookie, as a browser does
    closed = client.delete(SESSION)
    assert closed.status_code == 204
    assert f'{COOKIE}=""' in closed.headers["set-cookie"]  # cleared in the browser
    jti = stream_claims(cookie_token)["jti"]
    remaining = redis.ttl(keys.revoked_stream_session(jti))
    assert 3600 - 5 < remaining <= 3600 + 10 + 1  # the token's life plus the leeway
    client.cookies.set(COOKIE, cookie_token)  # someone who kept a copy
    refused = client.get(EVENTS)
    body = assert_error(refused, 401, "not_authenticated")
    assert "revoked" in body["detail"]


def test_closing_without_a_cookie_or_with_a_bad_one_is_harmless(client: TestClient) -> None:
    assert client.delete(SESSION).status_code == 204
    client.cookies.set(COOKIE, "not-a-jwt")
    assert client.delete(SESSION).status_code == 204


def test_an_expired_bearer_within_the_leeway_gets_no_cookie(client: TestClient) -> None:
    token, _ = bearer_for(timedelta(seconds=-3))  # accepted within the 10 s leeway
    response = client.post(SESSION, headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401, "not_authenticated")
