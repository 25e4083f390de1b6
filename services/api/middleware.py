"""ASGI middleware: request bodies over the configured size get 413; every
request gets an id and is counted."""

import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS
from shared.request_context import REQUEST_ID, request_id_from

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
            await self._reject(send, drained=await self._drain(receive, more=True))
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
            await self._reject(send, drained=await self._drain(receive, more=more))
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

    async def _reject(self, send: Send, *, drained: bool) -> None:
        payload = json.dumps(
            {
                "error": "payload_too_large",
                "detail": f"Request bodies are limited to {self.max_bytes} bytes.",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *([] if drained else [(b"connection", b"close")]),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


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
    """Gives every request an id (the caller's ``X-Request-ID`` or a new one),
    echoes it on the response, and counts the request by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(_header(scope, b"x-request-id"))
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        response: dict[str, object] = {"status": 500, "streaming": False}

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                headers = list(message.get("headers", []))
                response["streaming"] = (b"content-type", b"text/event-stream") in [
                    (name.lower(), value.split(b";")[0]) for name, value in headers
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            REQUEST_ID.reset(token)
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(scope["method"], route, str(response["status"])).inc()
            if not response["streaming"]:
                HTTP_LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
