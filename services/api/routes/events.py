"""``/api/v1/events``: the org's live event stream (SSE), and the HttpOnly
cookie that lets a browser's ``EventSource`` (which cannot send headers) use it."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Header, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from sse_starlette import EventSourceResponse

from services.api.deps import EngineDep, PrincipalDep, SettingsDep, bearer
from services.api.routes.handoffs import errors
from services.api.streaming.stream import OrgEventStream
from shared.auth import STREAM_AUDIENCE, Principal, decode_token, issue_stream_token
from shared.errors import InvalidInput, NotAuthenticated

router = APIRouter(prefix="/api/v1/events", tags=["events"])

STREAM_COOKIE = "escalations_stream"
COOKIE_PATH = "/api/v1/events"


def stream_principal(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    cookie: Annotated[str | None, Cookie(alias=STREAM_COOKIE)] = None,
) -> Principal:
    """A bearer token (API clients) or the stream cookie (browsers)."""
    if credentials is not None:
        return decode_token(credentials.credentials, secret=settings.jwt_secret)
    if cookie:
        return decode_token(cookie, secret=settings.jwt_secret, audience=STREAM_AUDIENCE)
    raise NotAuthenticated("Missing bearer token or stream cookie.")


def parse_last_event_id(header: str | None, query: str | None) -> int | None:
    """The header (sent by EventSource on reconnect) wins over the query parameter."""
    raw = header if header is not None else query
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput("Last-Event-ID must be an event id.", code="invalid_last_event_id")
    return int(raw)


@router.get("", include_in_schema=False)
async def stream_events(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    principal: Annotated[Principal, Depends(stream_principal)],
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id_query: Annotated[str | None, Query(alias="last_event_id")] = None,
) -> EventSourceResponse:
    last_event_id = parse_last_event_id(last_event_id_header, last_event_id_query)
    stream = OrgEventStream(
        hub=request.app.state.hub,
        engine=engine,
        org_id=principal.org_id,
        replay_limit=settings.event_replay_limit,
    )
    return EventSourceResponse(
        stream.frames(last_event_id),
        ping=settings.sse_ping_seconds,
        send_timeout=settings.sse_send_timeout_seconds,
        sep="\n",
        headers={"Cache-Control": "no-store"},
    )


@router.post("/session", status_code=204, responses=errors())
def open_stream_session(principal: PrincipalDep, settings: SettingsDep) -> Response:
    """Set the HttpOnly stream cookie for this caller (scoped to the stream's path)."""
    ttl = timedelta(seconds=settings.stream_cookie_ttl_seconds)
    response = Response(status_code=204)
    response.set_cookie(
        STREAM_COOKIE,
        issue_stream_token(principal, secret=settings.jwt_secret, ttl=ttl),
        max_age=settings.stream_cookie_ttl_seconds,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=settings.stream_cookie_secure,
    )
    return response


@router.delete("/session", status_code=204)
def close_stream_session() -> Response:
    """Clear the stream cookie (sign-out)."""
    response = Response(status_code=204)
    response.delete_cookie(STREAM_COOKIE, path=COOKIE_PATH)
    return response
