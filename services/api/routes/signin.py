"""``/auth/…``: the console's sign-in at the identity provider (a backend for
the frontend, ``shared.auth.oidc_signin``). 404 unless ``ESCALATIONS_OIDC_ISSUER``
and ``ESCALATIONS_OIDC_CLIENT_ID`` are set.

Two HttpOnly cookies, both scoped to ``/auth``: ``escalations_sign_in`` (the
``state`` of a sign-in under way, SameSite=Lax so it comes back with the
provider's redirect) and ``escalations_console`` (the console session's id,
SameSite=Strict). Failures of the callback go back to the console as
``#/signed-out?error=<code>`` (a fragment never reaches a server); no token is
ever in a URL."""

from typing import Annotated

from fastapi import APIRouter, Cookie, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from starlette.responses import Response

from services.api.deps import RedisDep, SettingsDep
from services.api.errors import errors
from shared.auth import oidc_signin
from shared.auth.oidc import IdentityProvider
from shared.core.errors import DomainError, NotAuthenticated, NotFound
from shared.core.settings import Settings

router = APIRouter(prefix="/auth", tags=["sign-in"])

SIGN_IN_COOKIE = "escalations_sign_in"
SESSION_COOKIE = "escalations_console"
COOKIE_PATH = "/auth"


def provider_of(request: Request, settings: Settings) -> IdentityProvider:
    provider = request.app.state.authenticator.provider
    if provider is None or not settings.oidc_client_id:
        raise NotFound(
            "Sign-in with an identity provider is not configured.", code="sso_not_configured"
        )
    return provider


class SessionTokenOut(BaseModel):
    token: str
    expires_at: int


class SignedOut(BaseModel):
    #: Where to send the browser to end the provider's session too, if it offers that.
    end_session_url: str | None


@router.get("/login", include_in_schema=False)
def login(request: Request, settings: SettingsDep, redis: RedisDep) -> Response:
    start = oidc_signin.begin(redis=redis, provider=provider_of(request, settings))
    response = RedirectResponse(start.url, status_code=302)
    response.set_cookie(
        SIGN_IN_COOKIE, start.state, max_age=oidc_signin.SIGN_IN_SECONDS, path=COOKIE_PATH,
        httponly=True, samesite="lax", secure=settings.stream_cookie_secure,
    )  # fmt: skip
    return response


@router.get("/callback", include_in_schema=False)
def callback(
    request: Request,
    settings: SettingsDep,
    redis: RedisDep,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=256)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
    sign_in_cookie: Annotated[str | None, Cookie(alias=SIGN_IN_COOKIE)] = None,
) -> Response:
    """Back from the provider: on success the session cookie is set and the
    browser goes to the console; otherwise to the console's sign-in page with
    the error's code."""
    provider = provider_of(request, settings)
    try:
        if error or not code or not state:
            raise NotAuthenticated(
                "The identity provider did not sign you in.", code="sign_in_failed"
            )
        if state != sign_in_cookie:  # begun in another browser, or forged
            raise NotAuthenticated("This sign-in was not begun here.", code="sign_in_failed")
        session_id = oidc_signin.finish(redis=redis, provider=provider, code=code, state=state)
    except DomainError as exc:
        response = RedirectResponse(f"{settings.public_url}/#/signed-out?error={exc.code}", 303)
    else:
        response = RedirectResponse(f"{settings.public_url}/", 303)
        response.set_cookie(
            SESSION_COOKIE, session_id, max_age=settings.oidc_session_max_seconds,
            path=COOKIE_PATH, httponly=True, samesite="strict",
            secure=settings.stream_cookie_secure,
        )  # fmt: skip
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/session", responses=errors(403, 404, 503))
def session_token(
    request: Request,
    settings: SettingsDep,
    redis: RedisDep,
    session_id: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
) -> SessionTokenOut:
    """The console session's bearer token, fresh (call again before it expires)."""
    provider = provider_of(request, settings)
    if not session_id:
        raise NotAuthenticated("Not signed in.")
    issued = oidc_signin.renew(redis=redis, provider=provider, session_id=session_id)
    return SessionTokenOut(token=issued.token, expires_at=issued.expires_at)


@router.post("/logout", responses=errors(404))
def logout(
    request: Request,
    settings: SettingsDep,
    redis: RedisDep,
    session_id: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
) -> Response:
    """Ends the console session and clears its cookie. The console also ends its
    stream session (``DELETE /api/v1/events/session``), then follows ``end_session_url``."""
    provider = provider_of(request, settings)
    url = oidc_signin.end(redis=redis, provider=provider, session_id=session_id)
    response = Response(
        SignedOut(end_session_url=url).model_dump_json(), media_type="application/json"
    )
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response
