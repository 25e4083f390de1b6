"""Load generator: thousands of SSE clients in one asyncio process.

    python -m bench.sse_clients --targets 127.0.0.1:8001,127.0.0.1:8002 --count 500
                                [--first-index 0] [--path /api/v1/events] [--token JWT]
                                [--connect-concurrency 64]

Run by ``bench/fanout.py`` and ``bench/stream_memory.py``, one process per slice of
the clients. Client ``i`` (counting from ``--first-index``) connects to target
``i % len(targets)``, so clients spread evenly over the replicas. Each client is
a bare ``asyncio.Protocol``: it writes the GET by hand and parses the response
minimally (status line, chunked or plain body, then ``id:``/``event:`` lines of
each SSE message). No httpx, no per-client task once connected: the cost of a
delivered message is one ``data_received`` call, stamped with
``time.monotonic()`` first thing (CLOCK_MONOTONIC: one clock for every process
on the machine, so the orchestrator's cause times compare directly).

Clients connect gradually: at most ``--connect-concurrency`` are between
"connecting" and "got its ``ready`` message" at any time.

Control: one command per line on stdin, one JSON answer per line on stdout.

  status            {"ready", "failed", "closed_early", "received", "errors"}
  mark              starts the CPU/wall clock for the event phase; {"ok": true}
  results JSON      JSON is {"causes": {seq: monotonic}, "published": {seq:
                    monotonic}} of the measured events; answers {"latencies_ms",
                    "fanout_ms", "expected", "received", "lost", "dup",
                    "unexpected", "cpu_s", "wall_s"}
  close             closes every connection; {"closed": n}
  quit              exits
"""

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

CONNECT_TIMEOUT_SECONDS = 30.0
MAX_ERRORS_REPORTED = 5


@dataclass
class Totals:
    """What every client of this process has seen so far."""

    ready: int = 0
    failed: int = 0
    closed_early: int = 0
    received: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append(message)


class SSEClient(asyncio.Protocol):
    """One SSE connection. Records ``(seq, monotonic)`` for every message after
    ``ready`` (comments, i.e. pings, are skipped)."""

    __slots__ = (
        "request", "totals", "ready", "transport", "head", "headers_done", "chunked",
        "raw", "chunk_left", "need_crlf", "body", "times", "closing", "ready_seq",
    )  # fmt: skip

    def __init__(self, request: bytes, totals: Totals, ready: asyncio.Future[int]) -> None:
        self.request = request
        self.totals = totals
        self.ready = ready
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.headers_done = False
        self.chunked = False
        self.raw = b""  # undecoded chunked framing carried over between reads
        self.chunk_left = 0
        self.need_crlf = False
        self.body = b""  # decoded SSE text not yet ending in a blank line
        self.times: list[tuple[int, float]] = []
        self.closing = False
        self.ready_seq = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready ({exc})"))
        elif not self.closing:
            self.totals.closed_early += 1

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.headers_done:
            data = self._read_head(data)
            if not data:
                return
        text = self._dechunk(data) if self.chunked else data
        body = self.body + text if self.body else text
        end = body.find(b"\n\n")
        while end >= 0:
            self._message(body[:end], now)
            body = body[end + 2 :]
            end = body.find(b"\n\n")
        self.body = body

    def _read_head(self, data: bytes) -> bytes:
        """Consumes the status line and headers; returns the body bytes after them."""
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return b""
        head, rest = self.head[:end], self.head[end + 4 :]
        self.head = b""
        self.headers_done = True
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            self._refuse(f"status {status.decode(errors='replace')}")
            return b""
        self.chunked = b"transfer-encoding: chunked" in head.lower()
        return rest

    def _refuse(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        self.close()

    def _dechunk(self, data: bytes) -> bytes:
        """HTTP/1.1 chunked transfer decoding, resumable across reads."""
        raw = self.raw + data if self.raw else data
        out = []
        pos, size = 0, len(raw)
        while pos < size:
            if self.chunk_left:
                take = min(self.chunk_left, size - pos)
                out.append(raw[pos : pos + take])
                pos += take
                self.chunk_left -= take
                self.need_crlf = self.chunk_left == 0
            elif self.need_crlf:
                if size - pos < 2:
                    break
                pos += 2
                self.need_crlf = False
            else:
                line_end = raw.find(b"\r\n", pos)
                if line_end < 0:
                    break
                self.chunk_left = int(raw[pos:line_end].split(b";", 1)[0], 16)
                pos = line_end + 2
                if self.chunk_left == 0:  # last chunk: the server ended the stream
                    self.need_crlf = True
        self.raw = raw[pos:]
        return b"".join(out) if len(out) != 1 else out[0]

    def _message(self, message: bytes, now: float) -> None:
        if not message or message[0] == 0x3A:  # blank, or a ":" comment (ping)
            return
        seq, event = -1, b""
        for line in message.split(b"\n", 2)[:2]:
            if line.startswith(b"id: "):
                seq = int(line[4:])
            elif line.startswith(b"event: "):
                event = line[7:]
        if event == b"ready":
            self.ready_seq = seq
            self.totals.ready += 1
            if not self.ready.done():
                self.ready.set_result(seq)
            return
        self.totals.received += 1
        self.times.append((seq, now))


@dataclass(frozen=True)
class Target:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "Target":
        host, port = text.rsplit(":", 1)
        return cls(host, int(port))

    def request(self, path: str, token: str | None) -> bytes:
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Accept: text/event-stream",
            "Cache-Control: no-cache",
        ]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


class LoadGenerator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.targets = [Target.parse(text) for text in args.targets.split(",")]
        self.requests = [target.request(args.path, args.token) for target in self.targets]
        self.first_index = args.first_index
        self.count = args.count
        self.concurrency = args.connect_concurrency
        self.totals = Totals()
        self.clients: list[SSEClient] = []
        self.mark_cpu = time.process_time()
        self.mark_wall = time.monotonic()

    async def connect_all(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        await asyncio.gather(*(self._connect(index, slots) for index in range(self.count)))

    async def _connect(self, index: int, slots: asyncio.Semaphore) -> None:
        which = (self.first_index + index) % len(self.targets)
        target = self.targets[which]
        loop = asyncio.get_running_loop()
        async with slots:
            ready: asyncio.Future[int] = loop.create_future()
            client = SSEClient(self.requests[which], self.totals, ready)
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: client, target.host, target.port),
                    CONNECT_TIMEOUT_SECONDS,
                )
                self.clients.append(client)
                await asyncio.wait_for(ready, CONNECT_TIMEOUT_SECONDS)
            except (OSError, TimeoutError, ConnectionError) as exc:
                client.close()
                self.totals.fail(f"client {index} -> {target.port}: {exc!r}")

    def status(self) -> dict[str, object]:
        totals = self.totals
        return {
            "ready": totals.ready,
            "failed": totals.failed,
            "closed_early": totals.closed_early,
            "received": totals.received,
            "errors": totals.errors,
        }

    def mark(self) -> dict[str, object]:
        self.mark_cpu, self.mark_wall = time.process_time(), time.monotonic()
        return {"ok": True}

    def results(self, causes: dict[int, float], published: dict[int, float]) -> dict[str, object]:
        """Latency of every measured delivery, and what is missing or doubled.

        Expected: every seq in ``causes``, once, by every client that got
        ``ready``. ``latencies_ms`` run from the cause, ``fanout_ms`` from when
        the orchestrator saw the event on Redis (``published``). Seqs below the
        first measured one (warm-up) are ignored; others not in ``causes`` are
        ``unexpected``."""
        cpu, wall = time.process_time() - self.mark_cpu, time.monotonic() - self.mark_wall
        first = min(causes, default=0)
        latencies: list[float] = []
        fanout: list[float] = []
        lost = dup = unexpected = expected = 0
        for client in self.clients:
            if client.ready_seq < 0:
                continue
            expected += len(causes)
            seen: set[int] = set()
            for seq, at in client.times:
                cause = causes.get(seq)
                if cause is None:
                    unexpected += seq >= first
                elif seq in seen:
                    dup += 1
                else:
                    seen.add(seq)
                    latencies.append(round((at - cause) * 1000, 3))
                    if seq in published:
                        fanout.append(round((at - published[seq]) * 1000, 3))
            lost += len(causes) - len(seen)
        return {
            "latencies_ms": latencies,
            "fanout_ms": fanout,
            "expected": expected,
            "received": len(latencies),
            "lost": lost,
            "dup": dup,
            "unexpected": unexpected,
            "cpu_s": cpu,
            "wall_s": wall,
        }

    def close(self) -> dict[str, object]:
        for client in self.clients:
            client.close()
        return {"closed": len(self.clients)}


async def serve(args: argparse.Namespace) -> None:
    generator = LoadGenerator(args)
    connecting = asyncio.create_task(generator.connect_all())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            command, _, argument = line.decode().strip().partition(" ")
            if command == "quit":
                break
            answer = handle(generator, command, argument)
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        connecting.cancel()
        generator.close()


def handle(generator: LoadGenerator, command: str, argument: str) -> dict[str, object]:
    if command == "status":
        return generator.status()
    if command == "mark":
        return generator.mark()
    if command == "results":
        times = json.loads(argument)
        causes = {int(seq): at for seq, at in times["causes"].items()}
        published = {int(seq): at for seq, at in times["published"].items()}
        return generator.results(causes, published)
    if command == "close":
        return generator.close()
    return {"error": f"unknown command {command!r}"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", required=True, help="host:port,host:port,...")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--first-index", type=int, default=0)
    parser.add_argument("--path", default="/api/v1/events")
    parser.add_argument("--token", default=None)
    parser.add_argument("--connect-concurrency", type=int, default=64)
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's own loop")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.no_uvloop:
        asyncio.run(serve(args))
        return
    import uvloop

    uvloop.run(serve(args))


if __name__ == "__main__":
    main()
