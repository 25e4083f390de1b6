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
stream, a send that takes longer than the send timeout raises its
``SendTimeoutError`` (the middleware counts it), and a stream that ends
sends the closing empty chunk. The send timeout is one watchdog per process
that looks at every stream's send in progress once a second: a timeout per send
(``asyncio.timeout``, anyio's ``move_on_after``) costs 4-14 µs, times every
stream, for every event, although uvicorn's send returns at once unless the
client stopped reading.
"""

import asyncio
import time
from collections.abc import AsyncGenerator, Coroutine, Mapping
from typing import Any, cast

import anyio
from sse_starlette.sse import SendTimeoutError
from starlette.types import Message, Receive, Scope, Send

HEADERS: Mapping[bytes, bytes] = {
    b"content-type": b"text/event-stream; charset=utf-8",
    b"cache-control": b"no-store",
    b"connection": b"keep-alive",
    b"x-accel-buffering": b"no",  # nginx: do not buffer the stream
}


class SendWatchdog:
    """Cancels the streams whose send has waited longer than ``timeout``
    seconds, checking every ``period`` seconds (so at most ``timeout + period``)."""

    def __init__(self, timeout: float, *, period: float = 1.0) -> None:
        self.timeout = timeout
        self.period = min(period, timeout / 2)
        self.streams: set[EventStreamResponse] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="sse-send-watchdog")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            too_old = time.monotonic() - self.timeout
            for stream in list(self.streams):
                if stream.sending_since is not None and stream.sending_since < too_old:
                    stream.time_out()


class EventStreamResponse:
    """Writes each ``bytes`` the generator yields as one chunk, until it ends or
    the client disconnects (then the generator is cancelled and closed)."""

    __slots__ = ("frames", "watchdog", "sending_since", "timed_out", "_scope", "_send")

    def __init__(self, frames: AsyncGenerator[bytes, None], *, watchdog: SendWatchdog) -> None:
        self.frames = frames
        self.watchdog = watchdog
        self.sending_since: float | None = None  # when the send in progress began
        self.timed_out = False
        self._scope = anyio.CancelScope()  # cancelled when the client leaves or a send stalls
        self._send: Send | None = None  # while the body streams: for ``write_now``

    def time_out(self) -> None:
        self.timed_out = True
        self._scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {
            "type": "http.response.start",
            "status": 200,
            "headers": list(HEADERS.items()),
        }
        self.watchdog.streams.add(self)
        listener = asyncio.create_task(_cancel_on_disconnect(receive, self._scope))
        try:
            with self._scope:
                if scope["method"] == "HEAD":  # headers only: an endless body never ends
                    await self._send_one(send, start)
                    await self._send_one(send, {"type": "http.response.body", "body": b""})
                else:
                    await self._stream(send, start)
        finally:
            listener.cancel()
            self.watchdog.streams.discard(self)
            # Interrupted in a send, the generator still sits at a yield: close it
            # now, so its cleanup (unsubscribe, the slot) does not wait for the GC.
            await self.frames.aclose()
        if self.timed_out:
            raise SendTimeoutError()

    async def _stream(self, send: Send, start: Message) -> None:
        await self._send_one(send, start)
        self._send = send
        try:
            async for frame in self.frames:
                message = {"type": "http.response.body", "body": frame, "more_body": True}
                await self._send_one(send, message)
        finally:
            self._send = None
        await self._send_one(send, {"type": "http.response.body", "body": b""})

    async def _send_one(self, send: Send, message: Message) -> None:
        """uvicorn's send returns at once unless the transport's buffer is full;
        then it waits for the client to read, until the watchdog gives up."""
        self.sending_since = time.monotonic()
        await send(message)
        self.sending_since = None

    def write_now(self, frame: bytes) -> bool:
        """Writes ``frame`` from the caller's stack, not this stream's task: the
        ASGI send is driven by hand and must finish without waiting (uvicorn's
        returns at once unless the client's buffer is full). True if written;
        False (nothing written) when it would wait, no body is streaming, a
        send is in progress, or it fails (the task's own send will see why)."""
        send = self._send
        if send is None or self.sending_since is not None:
            return False
        message = {"type": "http.response.body", "body": frame, "more_body": True}
        step = cast(Coroutine[Any, Any, None], send(message))
        try:
            step.send(None)
        except StopIteration:
            return True
        except Exception:  # the task's own next send reports it
            return False
        step.close()  # it waits before writing anything (uvicorn's flow control)
        return False


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()  # level-triggered: the stream's generator cannot swallow it
