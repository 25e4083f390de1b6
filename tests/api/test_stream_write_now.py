"""The hub's shortcut to a parked stream: ``EventStreamResponse.write_now`` writes
at once when the ASGI send finishes without waiting, and writes nothing when it
would wait (the event then goes to the stream's inbox)."""

import asyncio
from collections.abc import AsyncGenerator

from starlette.types import Message

from services.api.streaming.response import EventStreamResponse, SendWatchdog

DEADLINE_SECONDS = 5


def test_write_now_writes_only_what_needs_no_wait() -> None:
    async def run() -> tuple[list[bytes], bool, bool, bool]:
        sent: list[Message] = []
        writable = asyncio.Event()  # cleared: like uvicorn's send with the client's buffer full
        writable.set()
        release = asyncio.Event()

        async def send(message: Message) -> None:
            await writable.wait()
            sent.append(message)

        async def receive() -> Message:
            await asyncio.Event().wait()  # the client never leaves
            raise AssertionError

        async def frames() -> AsyncGenerator[bytes, None]:
            yield b"first"
            await release.wait()  # parked

        response = EventStreamResponse(frames(), watchdog=SendWatchdog(30))
        before_start = response.write_now(b"early")
        task = asyncio.create_task(response({"type": "http", "method": "GET"}, receive, send))
        async with asyncio.timeout(DEADLINE_SECONDS):
            while len(sent) < 2:  # the start and the first frame
                await asyncio.sleep(0)
        direct = response.write_now(b"direct")
        writable.clear()
        waiting = response.write_now(b"would wait")
        writable.set()
        release.set()
        async with asyncio.timeout(DEADLINE_SECONDS):
            await task
        return [message.get("body", b"") for message in sent[1:]], before_start, direct, waiting

    bodies, before_start, direct, waiting = asyncio.run(run())
    assert (before_start, direct, waiting) == (False, True, False)
    assert bodies == [b"first", b"direct", b""]  # b"": the closing chunk
