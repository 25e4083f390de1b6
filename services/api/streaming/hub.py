"""One Redis pub/sub subscription per API process, fanned out to that
process's SSE streams through bounded queues.

Each event arriving from Redis is parsed and framed once per process; every
subscribed stream of its org gets a reference to the same bytes. A stream
whose queue is full is marked overflowed and closes itself: a slow client is
disconnected instead of growing memory. After every (re)subscription the hub
sends each stream a ``RESYNC`` marker, and the stream catches up from the
database, so events published while the subscription was down are not lost.
"""

import asyncio
import json
import logging
from collections import defaultdict, deque
from typing import Final

import anyio
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from shared import keys

log = logging.getLogger(__name__)

RESYNC: Final = "resync"
STOP: Final = "stop"  # the server is shutting down: end the stream cleanly
MAX_BACKOFF_SECONDS = 5.0
#: How long ``stop`` waits on one cancellation before repeating it.
STOP_RETRY_SECONDS = 0.1

Frame = tuple[int, bytes]  # (seq, encoded SSE message)


def encode_frame(seq: int, event_type: str, data: bytes | str) -> bytes:
    """An SSE message. ``data`` is one line of JSON (json.dumps escapes newlines)."""
    payload = data.encode() if isinstance(data, str) else data
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event_type.encode(), payload)


class Subscriber:
    """One stream's bounded inbox: a deque and a future to wake the reader.
    (An ``asyncio.Queue`` holds four deques and an event: with thousands of
    streams, its ~2 KiB per stream is worth saving.)"""

    __slots__ = ("org_id", "size", "items", "overflowed", "_waiter")

    def __init__(self, org_id: str, size: int) -> None:
        self.org_id = org_id
        self.size = size
        self.items: deque[Frame | str] = deque()
        self.overflowed = False
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, item: Frame | str) -> None:
        if self.overflowed:
            return
        if len(self.items) >= self.size:
            self.overflowed = True  # the stream sees this on its next read and closes
        else:
            self.items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Frame | str:
        """The next item; returns at once with what is buffered, if anything."""
        while not self.items and not self.overflowed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.items.popleft() if self.items else RESYNC


class EventHub:
    def __init__(self, redis_url: str, *, queue_size: int) -> None:
        self._redis_url = redis_url
        self._queue_size = queue_size
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        #: Set by sse-starlette (every stream shares it) when the server begins to
        #: shut down; the hub then ends each stream, so each sends its last chunk.
        self.shutdown = anyio.Event()
        self._task = asyncio.create_task(self._run(), name="event-hub")
        self._stopper = asyncio.create_task(self._stop_streams_on_shutdown(), name="hub-stop")

    async def _stop_streams_on_shutdown(self) -> None:
        await self.shutdown.wait()
        for subscribers in list(self._subscribers.values()):
            for subscriber in list(subscribers):
                subscriber.offer(STOP)

    async def stop(self) -> None:
        """Cancel the subscription task and wait for it. redis-py's async pub/sub can
        swallow a cancellation that lands while it is still subscribing (about one stop
        in ten right after start), leaving one ``cancel()`` unanswered forever: repeat it."""
        if self._task is None:
            return
        self._stopper.cancel()
        while not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=STOP_RETRY_SECONDS)

    def subscribe(self, org_id: str) -> Subscriber:
        subscriber = Subscriber(org_id, self._queue_size)
        self._subscribers[org_id].add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.get(subscriber.org_id)
        if subscribers is None:
            return
        subscribers.discard(subscriber)
        if not subscribers:
            del self._subscribers[subscriber.org_id]

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                log.warning("event hub: redis subscription lost (%s); retrying", exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _listen(self) -> None:
        client = AsyncRedis.from_url(
            self._redis_url, protocol=2, socket_connect_timeout=1, health_check_interval=15
        )
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(keys.EVENTS_CHANNEL)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self._on_subscribed()
                    elif message["type"] == "message":
                        self._dispatch(message["data"])
        finally:
            await client.aclose()

    def _on_subscribed(self) -> None:
        for subscribers in list(self._subscribers.values()):
            for subscriber in list(subscribers):
                subscriber.offer(RESYNC)

    def _dispatch(self, data: bytes) -> None:
        try:
            event = json.loads(data)
            org_id, seq, event_type = event["org_id"], int(event["id"]), event["type"]
        except (ValueError, KeyError, TypeError):
            log.warning("event hub: ignoring a malformed message")
            return
        subscribers = self._subscribers.get(org_id)
        if not subscribers:
            return
        frame = (seq, encode_frame(seq, event_type, data))
        for subscriber in list(subscribers):
            subscriber.offer(frame)
