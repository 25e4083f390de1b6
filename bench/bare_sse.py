"""The floor for SSE fan-out: a bare sse-starlette endpoint fed by one Redis
subscription, with nothing else (no auth, no outbox, no database, no replay).

    python -m bench.bare_sse --port 8123 --redis-url redis://127.0.0.1:6380/0

``GET /stream`` sends a ``ready`` message, then every message published on
``CHANNEL`` (a JSON object with an integer ``"id"``), framed once per process
and handed to each stream's bounded queue, exactly as the real hub does. The
response uses the same sse-starlette settings as the real endpoint (ping 15 s,
send timeout 30 s, ``sep="\\n"``) and runs under the same uvicorn defaults
(uvloop and httptools when installed). ``GET /healthz`` answers once the
subscription is live.
"""

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from redis.asyncio import Redis
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

CHANNEL = "bench:fanout"
QUEUE_SIZE = 256


class Hub:
    """One subscription; every message framed once and offered to every queue."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.queues: set[asyncio.Queue[bytes]] = set()
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        client = Redis.from_url(self.redis_url, protocol=2)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self.subscribed.set()
                    elif message["type"] == "message":
                        self.dispatch(message["data"])
        finally:
            await client.aclose()

    def dispatch(self, data: bytes) -> None:
        seq = int(json.loads(data)["id"])
        frame = b"id: %d\nevent: bench\ndata: %s\n\n" % (seq, data)
        for queue in list(self.queues):
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:
                self.queues.discard(queue)


def create_app(redis_url: str) -> Starlette:
    hub = Hub(redis_url)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def frames(queue: "asyncio.Queue[bytes]") -> AsyncIterator[bytes]:
        hub.queues.add(queue)
        try:
            yield b'id: 0\nevent: ready\ndata: {"last_event_id": 0}\n\n'
            while True:
                yield await queue.get()
        finally:
            hub.queues.discard(queue)

    async def stream(_request: Request) -> Response:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_SIZE)
        return EventSourceResponse(frames(queue), ping=15, send_timeout=30, sep="\n")

    async def healthz(_request: Request) -> Response:
        ok = hub.subscribed.is_set()
        return PlainTextResponse("ok" if ok else "subscribing", 200 if ok else 503)

    return Starlette(
        routes=[Route("/stream", stream), Route("/healthz", healthz)], lifespan=lifespan
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args.redis_url), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
