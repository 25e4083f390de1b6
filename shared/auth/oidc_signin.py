"""The console's sign-in at the identity provider, as a backend for the
frontend: Authorization Code with PKCE (S256), ``state`` and ``nonce``.

The API is the OAuth client. It keeps the client secret, exchanges the code,
verifies the ID token (signature, issuer, audience = client id, nonce), maps
its claims to a principal and opens a *console session* in Redis. The browser
holds only an HttpOnly cookie naming that session, and asks for the service's
own short-lived HS256 token with it (:func:`renew`); each renewal asks the
provider again with its refresh token, so a user disabled there is out within
one token lifetime. No provider token ever reaches the browser or a URL.

Everything is in Redis, so any replica can finish a sign-in another began.
Blocking (HTTP, Redis): call from a worker thread.
"""

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from redis import Redis
from redis.exceptions import RedisError

from shared.auth.oidc import IdentityProvider, principal_from_claims
from shared.auth.oidc_keys import unavailable
from shared.auth.tokens import Principal, issue_bearer_token
from shared.core import keys
from shared.core.errors import Forbidden, NotAuthenticated, ServiceUnavailable
from shared.core.models import Role
from shared.core.settings import Settings

#: A sign-in must come back from the provider within this.
SIGN_IN_SECONDS = 600


@dataclass(frozen=True)
class SignInStart:
    url: str  # the provider's authorization endpoint with every parameter
    state: str  # also set as a cookie, so only this browser can finish it


@dataclass(frozen=True)
class SessionToken:
    token: str
    expires_at: int  # Unix seconds


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_url}/auth/callback"


@contextmanager
def _redis_answers() -> Iterator[None]:
    """A Redis error becomes ``ServiceUnavailable`` (``redis_unavailable``): a
    sign-in or a renewal that could not be recorded is not reported as done."""
    try:
        yield
    except RedisError as exc:
        raise ServiceUnavailable(
            "Sign-in is unavailable: Redis does not answer; retry shortly.",
            code="redis_unavailable",
        ) from exc


def begin(*, redis: Redis, provider: IdentityProvider) -> SignInStart:
    """A new sign-in: its ``state``, ``nonce`` and PKCE verifier (kept in Redis for
    ``SIGN_IN_SECONDS``). Raises ``ServiceUnavailable`` when the provider's
    discovery cannot be had, or Redis does not answer."""
    settings = provider.settings
    endpoint = provider.keys.discovery().authorization_endpoint
    if not endpoint:
        raise unavailable("The identity provider names no authorization endpoint.")
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    with _redis_answers():
        redis.set(keys.oidc_sign_in(state), json.dumps({"nonce": nonce, "verifier": verifier}),
                  ex=SIGN_IN_SECONDS)  # fmt: skip
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": settings.oidc_client_id,
        "redirect_uri": redirect_uri(settings),
        "scope": settings.oidc_scopes,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    return SignInStart(url=f"{endpoint}?{urlencode(query)}", state=state)


def finish(*, redis: Redis, provider: IdentityProvider, code: str, state: str) -> str:
    """Completes a sign-in this browser began (the caller checked its cookie
    against ``state``) and returns the new console session's id. Raises
    ``NotAuthenticated`` (``sign_in_failed``) for an unknown, used or expired
    ``state``, a refused code or a bad ID token; ``Forbidden`` (``no_role``);
    ``ServiceUnavailable`` when the provider does not answer."""
    with _redis_answers():
        raw = redis.getdel(keys.oidc_sign_in(state))
    if raw is None:
        raise _failed("This sign-in expired or was already used; sign in again.")
    pending = json.loads(raw)
    answer = _token_request(provider, {
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": redirect_uri(provider.settings), "code_verifier": pending["verifier"],
    })  # fmt: skip
    id_token = answer.get("id_token")
    if not isinstance(id_token, str):
        raise _failed("The identity provider sent no ID token.")
    claims = provider.claims(
        id_token, audience=provider.settings.oidc_client_id, nonce=pending["nonce"]
    )
    principal = principal_from_claims(claims, provider.settings)
    session_id = secrets.token_urlsafe(32)
    record = _Session.of(principal, refresh_token=answer.get("refresh_token"))
    with _redis_answers():
        _store(redis, session_id, record, ttl=provider.settings.oidc_session_max_seconds)
    return session_id


def renew(*, redis: Redis, provider: IdentityProvider, session_id: str) -> SessionToken:
    """A fresh HS256 token for the console session ``session_id``. With a refresh
    token the provider is asked first: a refusal ends the session
    (``NotAuthenticated``), a new ID token updates who the user is (and may
    raise ``Forbidden``, ``no_role``). Raises ``NotAuthenticated`` for a session
    that ended, ``ServiceUnavailable`` when the provider does not answer."""
    key = keys.console_session(session_id)
    with _redis_answers():
        raw = redis.get(key)
        if raw is None:
            raise NotAuthenticated("The console session ended; sign in again.")
        record = _Session(**json.loads(raw))
        if record.refresh_token:
            record = _refreshed(redis, provider, session_id, record)
        remaining = max(1, redis.ttl(key))
    settings = provider.settings
    ttl = min(settings.oidc_session_token_seconds, remaining)
    token = issue_bearer_token(
        settings, sub=record.sub, name=record.name, role=record.principal().role,
        org=record.org, ttl=timedelta(seconds=ttl),
    )  # fmt: skip
    return SessionToken(token=token, expires_at=int(time.time()) + ttl)


def end(*, redis: Redis, provider: IdentityProvider | None, session_id: str | None) -> str | None:
    """Ends the console session (if any) and returns where the browser should go
    to end the provider's session too (its ``end_session_endpoint``, if it offers
    one). The URL names the client (``client_id``), never the ID token
    (``id_token_hint``): a token in a URL reaches the provider's access log."""
    if session_id:
        with _redis_answers():
            redis.delete(keys.console_session(session_id))
    if provider is None:
        return None
    try:
        endpoint = provider.keys.discovery().end_session_endpoint
    except ServiceUnavailable:  # sign-out goes on without the provider
        return None
    if not endpoint:
        return None
    query = {"client_id": provider.settings.oidc_client_id,
             "post_logout_redirect_uri": f"{provider.settings.public_url}/"}  # fmt: skip
    return f"{endpoint}?{urlencode(query)}"


@dataclass(frozen=True)
class _Session:
    sub: str
    name: str
    role: str
    org: str
    refresh_token: str | None

    @classmethod
    def of(cls, principal: Principal, *, refresh_token: Any) -> "_Session":
        return cls(
            sub=principal.user_id, name=principal.name, role=principal.role.value,
            org=principal.org_id,
            refresh_token=refresh_token if isinstance(refresh_token, str) else None,
        )  # fmt: skip

    def principal(self) -> Principal:
        return Principal(user_id=self.sub, name=self.name, role=Role(self.role), org_id=self.org)


def _refreshed(
    redis: Redis, provider: IdentityProvider, session_id: str, record: _Session
) -> _Session:
    try:
        answer = _token_request(
            provider, {"grant_type": "refresh_token", "refresh_token": record.refresh_token}
        )
        principal = record.principal()
        id_token = answer.get("id_token")
        if isinstance(id_token, str):
            claims = provider.claims(id_token, audience=provider.settings.oidc_client_id)
            principal = principal_from_claims(claims, provider.settings)
    except (NotAuthenticated, Forbidden):  # refused, or no longer has a role here
        redis.delete(keys.console_session(session_id))
        raise
    refresh_token = answer.get("refresh_token") or record.refresh_token
    updated = _Session.of(principal, refresh_token=refresh_token)
    ttl = redis.ttl(keys.console_session(session_id))
    if ttl > 0:
        _store(redis, session_id, updated, ttl=ttl)
    return updated


def _store(redis: Redis, session_id: str, record: _Session, *, ttl: int) -> None:
    redis.set(keys.console_session(session_id), json.dumps(asdict(record)), ex=ttl)


def _token_request(provider: IdentityProvider, form: dict[str, Any]) -> dict[str, Any]:
    """POST to the provider's token endpoint as this client (``client_secret_basic``
    with a secret, else a public client naming its ``client_id``)."""
    settings = provider.settings
    endpoint = provider.keys.discovery().token_endpoint
    if not endpoint:
        raise unavailable("The identity provider names no token endpoint.")
    auth = None
    if settings.oidc_client_secret:
        auth = httpx.BasicAuth(settings.oidc_client_id or "", settings.oidc_client_secret)
    else:
        form = {**form, "client_id": settings.oidc_client_id}
    try:
        response = httpx.post(
            endpoint, data=form, auth=auth, timeout=settings.oidc_http_timeout_seconds
        )
    except httpx.HTTPError as exc:
        raise unavailable("The identity provider did not answer.") from exc
    if response.status_code in (400, 401):
        raise _failed("The identity provider refused the sign-in; sign in again.")
    if response.status_code != 200:
        raise unavailable(f"The identity provider answered {response.status_code}.")
    try:
        answer = response.json()
    except ValueError as exc:
        raise unavailable("The identity provider's answer is not JSON.") from exc
    if not isinstance(answer, dict):
        raise unavailable("The identity provider's answer is not a JSON object.")
    return answer


def _failed(detail: str) -> NotAuthenticated:
    return NotAuthenticated(detail, code="sign_in_failed")
