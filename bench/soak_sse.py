"""The soak's SSE clients: each holds one stream at a time to one replica and
records every connection (a :class:`Segment`) with what arrived on it.

A client behaves like a browser's ``EventSource``: when the server goes away it
reconnects (to the other replica, since this one may be dead) with
``Last-Event-ID`` set to the last id it got. Now and then it also reconnects on
purpose, to a random replica; a few of those stay away a while first, so the
org may move past the replay limit and the server answers ``reset``.
"""

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
CONNECT_TIMEOUT_SECONDS = 10.0
HEAD_TIMEOUT_SECONDS = 30.0
#: Mean seconds between a client's planned reconnects, and the share that stay away.
PLANNED_RECONNECT_MEAN_SECONDS = 45.0
SLEEPER_SHARE = 0.15
SLEEP_SECONDS = (10.0, 40.0)
RETRY_BACKOFF_SECONDS = (0.2, 0.6)
MAX_BACKOFF_SECONDS = 2.0


@dataclass(frozen=True)
class Frame:
    """One SSE message: its ``id:`` and ``event:``, and from its data the
    handoff, org and id it names (``None`` where the data has none)."""

    seq: int
    event: str
    handoff_id: str | None
    org_id: str | None
    data_id: int | None
    data_seq: int | None  # ``last_event_id`` of a ``ready`` or ``reset``


@dataclass
class Segment:
    """One connection: where to, with which ``Last-Event-ID``, what came back."""

    replica: int
    last_event_id: int | None
    opened: float
    status: int | None = None
    frames: list[Frame] = field(default_factory=list)
    error: str | None = None
    ended: float | None = None
    closed_by: str = ""  # "client" (planned or final), "server", "error", "bad_frame"


class StreamClient:
    def __init__(
        self, index: int, *, org: str, token: str, ports: list[int], rng: random.Random
    ) -> None:
        self.index = index
        self.org = org
        self.token = token
        self.ports = ports
        self.rng = rng
        self.segments: list[Segment] = []
        self.cursor: int | None = None  # the last id received (an event's, or ready's)
        self.connected = False
        #: Set when the load ends: no more planned reconnects, and a client away comes back.
        self.settling = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Stream until ``stop`` is set (then the current connection is closed)."""
        replica = self.index % len(self.ports)
        backoff = RETRY_BACKOFF_SECONDS[0]
        while not stop.is_set():
            planned_at = time.monotonic() + self.rng.expovariate(1 / PLANNED_RECONNECT_MEAN_SECONDS)
            segment = await self._connection(replica, planned_at, stop)
            if stop.is_set():
                return
            if segment.closed_by == "client":  # planned: a random replica, maybe later
                backoff = RETRY_BACKOFF_SECONDS[0]
                replica = self.rng.randrange(len(self.ports))
                if self.rng.random() < SLEEPER_SHARE:
                    await _sleep_unless(self.settling, self.rng.uniform(*SLEEP_SECONDS))
                continue
            replica = (replica + 1) % len(self.ports)  # the server went away: the other one
            await _sleep_unless(stop, self.rng.uniform(backoff, 1.5 * backoff))
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS) if segment.status != 200 else 0.2

    async def _connection(self, replica: int, planned_at: float, stop: asyncio.Event) -> Segment:
        segment = Segment(replica, self.cursor, time.monotonic())
        self.segments.append(segment)
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, self.ports[replica]), CONNECT_TIMEOUT_SECONDS
            )
            writer.write(self._request(replica))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_SECONDS)
            segment.status = int(head.split(b" ", 2)[1])
            if segment.status != 200:
                segment.error = (await reader.read(2000)).decode(errors="replace")
                segment.closed_by = "server"
                return segment
            self.connected = True
            body = Body(reader, chunked=b"transfer-encoding: chunked" in head.lower())
            segment.closed_by = await self._read(body, segment, planned_at, stop)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            segment.error = repr(exc)
            segment.closed_by = "error"
        except ValueError as exc:  # not a status line, or a message that does not parse
            segment.error = repr(exc)
            segment.closed_by = "bad_frame"
        finally:
            self.connected = False
            segment.ended = time.monotonic()
            if writer is not None:
                writer.close()
        return segment

    async def _read(
        self, body: "Body", segment: Segment, planned_at: float, stop: asyncio.Event
    ) -> str:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                remaining = planned_at - time.monotonic()
                if self.settling.is_set():
                    remaining = float("inf")  # stay until stopped
                if remaining <= 0:
                    return "client"
                read = asyncio.ensure_future(body.message())
                done, _ = await asyncio.wait(
                    {read, stopping},
                    timeout=None if remaining == float("inf") else remaining,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if read not in done:
                    read.cancel()
                    return "client"
                block = read.result()
                if block is None:
                    return "server"
                frame = parse_frame(block)
                if frame is not None:
                    segment.frames.append(frame)
                    self.cursor = frame.seq
        finally:
            stopping.cancel()

    def _request(self, replica: int) -> bytes:
        lines = [
            "GET /api/v1/events HTTP/1.1",
            f"Host: {HOST}:{self.ports[replica]}",
            f"Authorization: Bearer {self.token}",
            "Accept: text/event-stream",
        ]
        if self.cursor is not None:
            lines.append(f"Last-Event-ID: {self.cursor}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Body:
    """An SSE response body, chunked or not, read one message (up to a blank
    line) at a time."""

    def __init__(self, reader: asyncio.StreamReader, *, chunked: bool) -> None:
        self._reader = reader
        self._chunked = chunked
        self._buffer = b""

    async def message(self) -> bytes | None:
        """The next message, or ``None`` once the server has ended the body."""
        while (end := self._buffer.find(b"\n\n")) < 0:
            data = await self._next_data()
            if not data:
                return None
            self._buffer += data
        message, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
        return message

    async def _next_data(self) -> bytes:
        try:
            if not self._chunked:
                return await self._reader.read(65536)
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                return b""
            return (await self._reader.readexactly(size + 2))[:-2]
        except asyncio.IncompleteReadError:
            return b""


def parse_frame(block: bytes) -> Frame | None:
    """An SSE message, or ``None`` for a comment (heartbeat). Raises
    ``ValueError`` on a message without an integer id or with bad JSON data."""
    fields: dict[str, str] = {}
    for line in block.decode().splitlines():
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value
    if not fields:
        return None
    if "id" not in fields:
        raise ValueError(f"a message without an id: {block[:300]!r}")
    data = json.loads(fields["data"]) if "data" in fields else {}
    return Frame(
        seq=int(fields["id"]),
        event=fields.get("event", "message"),
        handoff_id=data.get("handoff_id"),
        org_id=data.get("org_id"),
        data_id=data.get("id"),
        data_seq=data.get("last_event_id"),
    )


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
