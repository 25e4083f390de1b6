"""The SSE response for thousands of long-lived streams: two plain asyncio tasks
per connection.

sse-starlette's ``EventSourceResponse`` runs four anyio tasks per connection in a
task group (writer, ping, shutdown watcher, disconnect listener) and enters a
cancel scope for every send: about 20 KiB of a stream's ~47 KiB (tracemalloc,
docs/decisions.md). Here pings and shutdown belong to the hub (one timer and one
watcher per process, offered to every inbox like events), the writer is the ASGI
task itself, and one small task waits for ``http.disconnect`` (uvicorn's ``send``
does not raise once the client has gone, so nothing else would notice).

Behaviour kept from sse-starlette: the same headers, HEAD answered without a
stream, a send that takes longer than ``send_timeout`` raises its
``SendTimeoutError`` (the middleware counts it), and a stream that ends
sends the closing empty chunk.
"""

import asyncio
from collections.abc import AsyncGenerator, Mapping

import anyio
from sse_starlette.sse import SendTimeoutError
from starlette.types import Message, Receive, Scope, Send

HEADERS: Mapping[bytes, bytes] = {
    b"content-type": b"text/event-stream; charset=utf-8",
    b"cache-control": b"no-store",
    b"connection": b"keep-alive",
    b"x-accel-buffering": b"no",  # nginx: do not buffer the stream
}


class EventStreamResponse:
    """Writes each ``bytes`` the generator yields as one chunk, until it ends or
    the client disconnects (then the generator is cancelled and closed)."""

    __slots__ = ("frames", "send_timeout")

    def __init__(self, frames: AsyncGenerator[bytes, None], *, send_timeout: float) -> None:
        self.frames = frames
        self.send_timeout = send_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {
            "type": "http.response.start",
            "status": 200,
            "headers": list(HEADERS.items()),
        }
        if scope["method"] == "HEAD":  # headers only: an endless body would never end
            await self._send(send, start)
            await self._send(send, {"type": "http.response.body", "body": b""})
            return
        try:
            with anyio.CancelScope() as streaming:  # cancelled when the client leaves
                listener = asyncio.create_task(_cancel_on_disconnect(receive, streaming))
                try:
                    await self._stream(send, start)
                finally:
                    listener.cancel()
        finally:
            # Interrupted in a send, the generator still sits at a yield: close it
            # now, so its cleanup (unsubscribe, the slot) does not wait for the GC.
            await self.frames.aclose()

    async def _stream(self, send: Send, start: Message) -> None:
        await self._send(send, start)
        async for frame in self.frames:
            await self._send(send, {"type": "http.response.body", "body": frame, "more_body": True})
        await self._send(send, {"type": "http.response.body", "body": b""})

    async def _send(self, send: Send, message: Message) -> None:
        """uvicorn's send returns at once unless the transport's buffer is full;
        then it waits for the client to read, at most ``send_timeout``."""
        try:
            async with asyncio.timeout(self.send_timeout):
                await send(message)
        except TimeoutError:
            raise SendTimeoutError() from None


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()  # level-triggered: the stream's generator cannot swallow it
