"""``/api/v1/events``: the org's live event stream (SSE), and the HttpOnly
cookie that lets a browser's ``EventSource`` (which cannot send headers) use it.

The cookie's token expires with the bearer token it was made from (or after
``ESCALATIONS_STREAM_COOKIE_TTL_SECONDS``, if sooner) and names a session
(``jti``) that ``DELETE /events/session`` revokes on every replica. An open
stream ends with a ``session_expired`` event when its token expires or its
session is revoked."""

import contextlib
import re
import time
from dataclasses import replace
from datetime import timedelta
from functools import partial

from fastapi import APIRouter, Request, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from services.api.authentication import Authentication, Credentials, credentials
from services.api.deps import PrincipalDep, RedisDep, SettingsDep
from services.api.errors import errors
from services.api.streaming.admission import admitted_stream
from services.api.streaming.response import EventStreamResponse
from services.api.streaming.stream import OrgEventStream, StreamAccess
from shared.auth.tokens import STREAM_AUDIENCE, Principal, decode_token, issue_stream_token
from shared.core.errors import Forbidden, InvalidInput, NotAuthenticated
from shared.core.settings import Settings
from shared.events import stream_sessions

router = APIRouter(prefix="/api/v1/events", tags=["events"])

STREAM_COOKIE = "escalations_stream"
STREAM_PATH = "/api/v1/events"
EVENT_ID = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() accepts "²"


async def stream_credentials(request: Request) -> Credentials:
    """The request's credentials, the stream cookie with them: a bearer token (API
    clients) or the cookie (browsers: an ``EventSource`` sends no header)."""
    offered = await credentials(request)
    return replace(offered, stream_cookie=request.cookies.get(STREAM_COOKIE), stream=True)


def parse_last_event_id(header: str | None, query: str | None) -> int | None:
    """The header (sent by EventSource on reconnect) wins over the query parameter."""
    raw = header if header is not None else query
    if raw is None or raw == "":
        return None
    if not EVENT_ID.fullmatch(raw):
        raise InvalidInput("Last-Event-ID must be an event id.", code="invalid_last_event_id")
    return int(raw)


class StreamEndpoint:
    """``GET /api/v1/events``, as a bare ASGI app rather than a FastAPI route:
    anything a request handler keeps stays alive as long as its stream (FastAPI's
    per-request dependency state alone was ~8 KiB per stream in bench/fanout.py),
    so this one keeps only the response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        authentication: Authentication = request.app.state.authentication
        authenticate = partial(authentication.principal, await stream_credentials(request))
        async with admitted_stream(request, authenticate) as principal:  # limits, slot
            response = event_stream_response(request, principal)
            await response(scope, receive, send)


def event_stream_response(request: Request, principal: Principal) -> EventStreamResponse:
    settings: Settings = request.app.state.settings
    last_event_id = parse_last_event_id(
        request.headers.get("last-event-id"), request.query_params.get("last_event_id")
    )
    stream = OrgEventStream(
        hub=request.app.state.hub,
        engine=request.app.state.engine,
        access=StreamAccess(
            org_id=principal.org_id,
            expires_at=principal.expires_at,
            session_id=principal.session_id,
        ),
        replay_limit=settings.event_replay_limit,
        replay_batch_bytes=settings.event_replay_batch_bytes,
    )
    response = EventStreamResponse(
        stream.frames(last_event_id), watchdog=request.app.state.hub.send_watchdog
    )
    stream.write_now = response.write_now  # the hub writes parked streams directly
    return response


router.routes.append(Route(STREAM_PATH, StreamEndpoint(), methods=["GET"], include_in_schema=False))


@router.post("/session", status_code=204, responses=errors(403, 429))
def open_stream_session(principal: PrincipalDep, settings: SettingsDep) -> Response:
    """Set the HttpOnly stream cookie for this caller (scoped to the stream's path),
    expiring no later than the bearer token. Not for API keys (403): they read the
    stream with their bearer header, so revoking the key ends it."""
    if principal.is_api_key:
        raise Forbidden(
            "API keys read the event stream with their Authorization header.",
            code="api_key_stream_cookie",
        )
    max_ttl = timedelta(seconds=settings.stream_cookie_ttl_seconds)
    issued = issue_stream_token(principal, settings=settings, max_ttl=max_ttl)
    response = Response(status_code=204)
    response.set_cookie(
        STREAM_COOKIE,
        issued.token,
        max_age=max(0, issued.expires_at - int(time.time())),
        path=STREAM_PATH,
        httponly=True,
        samesite="strict",
        secure=settings.stream_cookie_secure,
    )
    return response


@router.delete("/session", status_code=204, responses=errors(503))
def close_stream_session(request: Request, settings: SettingsDep, redis: RedisDep) -> Response:
    """Revoke the stream cookie's session (its open streams end on every replica,
    and it is refused from now on) and clear the cookie (sign-out). The cookie is
    the credential: its Path, /api/v1/events, covers this route."""
    cookie = request.cookies.get(STREAM_COOKIE, "")
    principal = None
    # An expired or foreign cookie can open no stream: nothing to revoke.
    with contextlib.suppress(NotAuthenticated):
        principal = decode_token(cookie, settings=settings, audience=STREAM_AUDIENCE)
    if principal is not None and principal.session_id is not None:
        stream_sessions.revoke(
            redis,
            session_id=principal.session_id,
            expires_at=principal.expires_at or time.time(),
            leeway_seconds=settings.jwt_leeway_seconds,
        )
    response = Response(status_code=204)
    response.delete_cookie(STREAM_COOKIE, path=STREAM_PATH)
    return response
