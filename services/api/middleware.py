"""ASGI middleware: request bodies over the configured size get 413; every
request gets an id, is counted and logged."""

import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi.routing import APIRoute
from sse_starlette.sse import SendTimeoutError
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import error_response
from shared.core.metrics import HTTP_LATENCY, HTTP_REQUESTS, STREAM_DISCONNECTS
from shared.core.request_context import (
    CLIENT_REQUEST_ID,
    REQUEST_ID,
    client_request_id,
    new_request_id,
)

access_log = logging.getLogger("escalations.access")

#: A JWT anywhere in a logged path or query key (``shared/logs.py`` has the same).
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
#: An API key (``esk_`` and its random part) anywhere in a logged path or query key.
API_KEY = re.compile(r"esk_[A-Za-z0-9_-]{16,}")
#: Label combinations whose metric children ``RequestObservation`` keeps (routes are
#: templates, so the combinations are few; a bound all the same).
MAX_LABEL_SETS = 1000
#: Longest request target an access log line shows.
MAX_LOGGED_TARGET = 2000

#: An oversized body is read and dropped up to this many times the limit before
#: the 413, so a proxy in front sees a complete exchange (not a reset) and the
#: connection can be reused; past that the connection is closed instead.
DRAIN_FACTOR = 4


class BodySizeLimit:
    """Reads the body up front (it is at most ``max_bytes``) and answers 413 past
    that, whether or not the client sent a ``Content-Length``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        if self._declared_length(scope) > self.max_bytes:
            await self._reject(scope, receive, send, drained=await self._drain(receive, more=True))
            return
        body = bytearray()
        more = True
        while more and len(body) <= self.max_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if len(body) > self.max_bytes:
            await self._reject(scope, receive, send, drained=await self._drain(receive, more=more))
            return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _drain(self, receive: Receive, *, more: bool) -> bool:
        """Read and drop the rest of the body, up to a bound; True if all of it was read."""
        dropped = 0
        while more and dropped <= DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            dropped += len(message.get("body", b""))
            more = message.get("more_body", False)
        return not more

    def _declared_length(self, scope: Scope) -> int:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0

    async def _reject(self, scope: Scope, receive: Receive, send: Send, *, drained: bool) -> None:
        response = error_response(
            413, "payload_too_large", f"Request bodies are limited to {self.max_bytes} bytes."
        )
        if not drained:
            response.headers["connection"] = "close"
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class RequestObservation:
    """Gives every request a server-made id (stored on the events and jobs it
    causes), echoes the caller's ``X-Request-ID`` when it is a sane token (else
    the server's id), counts the request by route template, and writes one access
    log line: no headers, and query values left out.

    ``templates`` labels routes that FastAPI does not name in the scope (a bare
    Starlette ``Route`` or ``Mount``), by endpoint: see :func:`route_templates`."""

    def __init__(self, app: ASGIApp, *, templates: Mapping[object, str] | None = None) -> None:
        self.app = app
        self.templates = templates or {}
        #: The metrics' children by their labels: ``labels()`` takes a lock and
        #: builds its key on every call; these few combinations are looked up once.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        client_id = client_request_id(_header(scope, b"x-request-id"))
        tokens = REQUEST_ID.set(request_id), CLIENT_REQUEST_ID.set(client_id)
        echoed = (client_id or request_id).encode()
        started = time.perf_counter()
        response: dict[str, object] = {"status": 500, "streaming": False}

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                headers = list(message.get("headers", []))
                response["streaming"] = any(
                    name.lower() == b"content-type" and value.split(b";")[0] == b"text/event-stream"
                    for name, value in headers
                )
                headers.append((b"x-request-id", echoed))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except SendTimeoutError:
            # sse-starlette gave up on a client that took no write for
            # ESCALATIONS_SSE_SEND_TIMEOUT_SECONDS; the connection is closed.
            STREAM_DISCONNECTS.labels("send_timeout").inc()
            raise
        finally:
            elapsed = time.perf_counter() - started
            method, route, status = scope["method"], self._route(scope), response["status"]
            counted = self._counted.get((method, route, status))  # type: ignore[arg-type]
            if counted is None:
                counted = HTTP_REQUESTS.labels(method, route, str(status))
                if len(self._counted) < MAX_LABEL_SETS:
                    self._counted[(method, route, status)] = counted  # type: ignore[index]
            counted.inc()
            if not response["streaming"]:
                timed = self._timed.get((method, route))
                if timed is None:
                    timed = HTTP_LATENCY.labels(method, route)
                    if len(self._timed) < MAX_LABEL_SETS:
                        self._timed[(method, route)] = timed
                timed.observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    '%s "%s %s" %s %.1fms',
                    _client(scope),
                    scope["method"],
                    loggable_target(scope),
                    response["status"],
                    elapsed * 1000,
                )
            REQUEST_ID.reset(tokens[0])
            CLIENT_REQUEST_ID.reset(tokens[1])

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if isinstance(route, APIRoute):
            return route.path
        return self.templates.get(scope.get("endpoint"), "unmatched")


def route_templates(routes: Iterable[BaseRoute]) -> dict[object, str]:
    """Route templates by endpoint for the routes FastAPI leaves unnamed in the
    scope: bare Starlette routes (the event stream, the docs) and mounts."""
    templates: dict[object, str] = {}
    for route in routes:
        if isinstance(route, APIRoute):
            continue
        if isinstance(route, Route):
            templates[route.endpoint] = route.path
        elif isinstance(route, Mount):
            templates[route.app] = f"{route.path}/{{path}}"
    return templates


def loggable_target(scope: Scope) -> str:
    """The request's path and query keys, never query values (a token pasted into
    a URL stays out of the log), with anything shaped like a JWT or an API key replaced."""
    target = scope["path"]
    query = scope.get("query_string", b"")
    if query:
        keys = (part.partition(b"=") for part in query.split(b"&"))
        target += "?" + "&".join(
            key.decode("latin-1") + ("=*" if sep else "") for key, sep, _ in keys
        )
    if "eyJ" in target:
        target = JWT.sub("[jwt]", target)
    if "esk_" in target:
        target = API_KEY.sub("[api-key]", target)
    return target if len(target) <= MAX_LOGGED_TARGET else target[:MAX_LOGGED_TARGET] + "..."


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "-"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
