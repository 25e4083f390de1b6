"""One Redis pub/sub subscription per API process, fanned out to that
process's SSE streams through bounded queues.

Each event arriving from Redis is parsed and framed once per process; every
subscribed stream of its org gets a reference to the same bytes. A stream
whose queue is full is marked overflowed and closes itself: a slow client is
disconnected instead of growing memory. After every (re)subscription the hub
sends each stream a ``RESYNC`` marker, and the stream catches up from the
database, so events published while the subscription was down are not lost.

The hub also keeps the streams alive and ends them on shutdown, for all of them
at once: every ``ping_seconds`` it offers a ``PING`` (the stream writes an SSE
comment) to each inbox offered no event since the previous round, and when the
server begins to exit it offers each a ``STOP``. (A busy stream needs no
keep-alive, and pinging thousands of streams costs as much as an event; at most
``2 * ping_seconds`` pass without a write.) One timer and one watcher per
process, instead of two tasks per stream; likewise its ``send_watchdog`` ends
the streams whose client stopped reading.

The same subscription hears stream-session revocations: a revoked session's
streams on this process end at once, and so does a stream whose token expires
(a timer per stream). After a re-subscription the hub asks Redis whether any of
its sessions was revoked while it was not listening.
"""

import asyncio
import logging
import signal
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Final, Literal

import anyio
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError
from sse_starlette.sse import AppStatus

from services.api.streaming.response import SendWatchdog
from shared.core import keys
from shared.core.db import load_json

log = logging.getLogger(__name__)

RESYNC: Final = "resync"
STOP: Final = "stop"  # the server is shutting down: end the stream cleanly
PING: Final = "ping"  # write a keep-alive comment
OPEN_READ_CONCURRENCY = 4
#: How often the hub looks whether the server has begun to exit.
SHUTDOWN_POLL_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 5.0
#: How long ``stop`` waits on one cancellation before repeating it. Short: a stop
#: right after start (every test's app) loses its first cancellation most times.
STOP_RETRY_SECONDS = 0.005

EVENTS_CHANNEL: Final = keys.EVENTS_CHANNEL.encode()  # as pub/sub messages name it
#: A revocation heard just before a stream subscribed still ends it: streams
#: check for revocation when they open, then subscribe, within this window.
RECENT_REVOCATION_SECONDS = 60.0

Frame = tuple[int, bytes]  # (seq, encoded SSE message)
EndReason = Literal["expired", "revoked"]


def encode_frame(seq: int, event_type: str, data: bytes | str) -> bytes:
    """An SSE message. ``data`` is one line of JSON (json.dumps escapes newlines)."""
    payload = data.encode() if isinstance(data, str) else data
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event_type.encode(), payload)


class Subscriber:
    """One stream's bounded inbox: a deque and a future to wake the reader.
    (An ``asyncio.Queue`` holds four deques and an event: with thousands of
    streams, its ~2 KiB per stream is worth saving.) ``ended`` says why the
    stream's session is over; once set, the reader gets nothing else."""

    __slots__ = (
        "org_id", "session_id", "size", "items", "overflowed", "ended", "timer", "offered_at",
        "write", "_waiter",
    )  # fmt: skip

    def __init__(self, org_id: str, size: int, session_id: str | None = None) -> None:
        self.org_id = org_id
        self.session_id = session_id
        self.size = size
        self.items: deque[Frame | str] = deque()
        self.overflowed = False
        self.ended: EndReason | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.offered_at = 0.0  # loop time of the last event offered
        #: The stream's shortcut (``OrgEventStream.write_parked``): writes an event
        #: at once, or returns False and the event is offered to the inbox instead.
        self.write: Callable[[Frame], bool] | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def parked(self) -> bool:
        """The stream's task waits in ``get`` with nothing buffered: it is not
        in the middle of a send, a catch-up or its opening."""
        return self._waiter is not None and not self._waiter.done() and not self.items

    def offer(self, item: Frame | str) -> None:
        if self.overflowed:
            return
        if len(self.items) >= self.size:
            self.overflowed = True  # the stream sees this on its next read and closes
        else:
            self.items.append(item)
        self._wake()

    def end(self, reason: EndReason) -> None:
        """The session is over (its token expired, or it was revoked)."""
        if self.ended is None:
            self.ended = reason
            self.items.clear()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Frame | str:
        """The next item; returns at once with what is buffered, if anything.
        ``RESYNC`` when the inbox overflowed or the session ended (the caller
        checks ``overflowed`` and ``ended`` first)."""
        while not self.items and not self.overflowed and self.ended is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.items.popleft() if self.items and self.ended is None else RESYNC


class EventHub:
    def __init__(
        self,
        connect: Callable[[], AsyncRedis],
        *,
        queue_size: int,
        replay_concurrency: int = 4,
        ping_seconds: float = 15.0,
        send_timeout_seconds: float = 30.0,
    ) -> None:
        """``connect`` makes the subscription's client (a new one after each loss)."""
        self._connect = connect
        self._queue_size = queue_size
        self._ping_seconds = ping_seconds
        #: Ends this process's streams whose client stopped reading.
        self.send_watchdog = SendWatchdog(send_timeout_seconds)
        #: Shared by this process's streams: how many replay pages are read at once.
        self.replay_limiter = anyio.CapacityLimiter(replay_concurrency)
        #: How many opening streams read their org's latest ``seq`` at once: a
        #: burst of thousands of connects takes a few pooled connections, not
        #: anyio's 40 threads' worth of them (PostgreSQL's max_connections is shared).
        self.open_limiter = anyio.CapacityLimiter(OPEN_READ_CONCURRENCY)
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._sessions: dict[str, set[Subscriber]] = defaultdict(set)
        #: session id → loop time until which a stream subscribing with it is ended at once
        self._recently_revoked: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._helpers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.send_watchdog.start()
        self._task = asyncio.create_task(self._run(), name="event-hub")
        self._helpers = [
            asyncio.create_task(self._ping_streams(), name="hub-ping"),
            asyncio.create_task(self._stop_streams_on_shutdown(), name="hub-stop"),
        ]

    def _offer_all(self, item: str, *, quiet_since: float | None = None) -> None:
        """``item`` to every inbox (with ``quiet_since``: those offered no event since)."""
        for subscribers in list(self._subscribers.values()):
            for subscriber in list(subscribers):
                if quiet_since is None or subscriber.offered_at <= quiet_since:
                    subscriber.offer(item)

    async def _ping_streams(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            last_round = loop.time()
            await asyncio.sleep(self._ping_seconds)
            self._offer_all(PING, quiet_since=last_round)

    async def _stop_streams_on_shutdown(self) -> None:
        """uvicorn waits for open responses before the app's shutdown runs, so
        the streams must notice the exit signal themselves."""
        while not server_exiting():
            await asyncio.sleep(SHUTDOWN_POLL_SECONDS)
        self._offer_all(STOP)

    async def stop(self) -> None:
        """Cancel the subscription task and wait for it. redis-py's async pub/sub can
        swallow a cancellation that lands while it is still subscribing (about one stop
        in ten right after start), leaving one ``cancel()`` unanswered forever: repeat it."""
        if self._task is None:
            return
        self.send_watchdog.stop()
        for helper in self._helpers:
            helper.cancel()
        while not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=STOP_RETRY_SECONDS)

    def subscribe(
        self, org_id: str, *, expires_at: float | None = None, session_id: str | None = None
    ) -> Subscriber:
        """A new inbox for one stream of ``org_id``. It is ended with "expired" at
        ``expires_at`` (Unix seconds, the stream's token ``exp``) and with "revoked"
        when ``session_id`` (a cookie token's ``jti``) is revoked on any replica."""
        subscriber = Subscriber(org_id, self._queue_size, session_id)
        self._subscribers[org_id].add(subscriber)
        if expires_at is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, expires_at - time.time())
            subscriber.timer = loop.call_later(delay, subscriber.end, "expired")
        if session_id is not None:
            self._sessions[session_id].add(subscriber)
            if session_id in self._recently_revoked:
                subscriber.end("revoked")
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber.timer is not None:
            subscriber.timer.cancel()
        _discard(self._subscribers, subscriber.org_id, subscriber)
        if subscriber.session_id is not None:
            _discard(self._sessions, subscriber.session_id, subscriber)

    def revoked(self, session_id: str) -> None:
        """``session_id`` was revoked: end its streams in this process, and any
        that subscribes with it in the next ``RECENT_REVOCATION_SECONDS``."""
        now = asyncio.get_running_loop().time()
        for stale in [key for key, until in self._recently_revoked.items() if until <= now]:
            del self._recently_revoked[stale]
        self._recently_revoked[session_id] = now + RECENT_REVOCATION_SECONDS
        for subscriber in list(self._sessions.get(session_id, ())):
            subscriber.end("revoked")

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
        client = self._connect()
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(keys.EVENTS_CHANNEL, keys.STREAM_REVOCATIONS_CHANNEL)
                async for message in pubsub.listen():
                    await self._on_message(message, client)
        finally:
            await client.aclose()

    async def _on_message(self, message: dict, client: AsyncRedis) -> None:
        kind, channel = message["type"], message.get("channel")
        if kind == "subscribe" and channel == EVENTS_CHANNEL:
            self._on_subscribed()
        elif kind == "subscribe":
            await self._recheck_revocations(client)
        elif kind == "message" and channel == EVENTS_CHANNEL:
            self._dispatch(message["data"])
        elif kind == "message":
            self.revoked(message["data"].decode(errors="replace"))

    def _on_subscribed(self) -> None:
        self._offer_all(RESYNC)

    async def _recheck_revocations(self, client: AsyncRedis) -> None:
        """Revocations published while this process was not subscribed."""
        session_ids = list(self._sessions)
        if not session_ids:
            return
        found = await client.mget([keys.revoked_stream_session(sid) for sid in session_ids])
        for session_id, value in zip(session_ids, found, strict=True):
            if value is not None:
                self.revoked(session_id)

    def _dispatch(self, data: bytes) -> None:
        if not self._subscribers:
            return  # no stream here: every process gets every event, most need not read it
        try:
            event = load_json(data)
            org_id, seq, event_type = event["org_id"], int(event["id"]), event["type"]
        except (ValueError, KeyError, TypeError):
            log.warning("event hub: ignoring a malformed message")
            return
        subscribers = self._subscribers.get(org_id)
        if not subscribers:
            return
        frame = (seq, encode_frame(seq, event_type, data))
        now = asyncio.get_running_loop().time()
        for subscriber in list(subscribers):
            subscriber.offered_at = now
            # A parked stream is written here, in this loop, instead of waking its
            # task (a task step through the ASGI stack per stream cost about as
            # much as the socket write itself): docs/decisions.md.
            if subscriber.write is None or not subscriber.write(frame):
                subscriber.offer(frame)


def server_exiting() -> bool:
    """Whether uvicorn has begun to exit: sse-starlette's ``AppStatus`` (it wraps
    ``Server.handle_exit`` when imported), or the ``should_exit`` of the server
    whose bound method handles SIGTERM (when the wrap came too late)."""
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return AppStatus.should_exit or getattr(server, "should_exit", False) is True


def _discard(index: dict[str, set[Subscriber]], key: str, subscriber: Subscriber) -> None:
    subscribers = index.get(key)
    if subscribers is None:
        return
    subscribers.discard(subscriber)
    if not subscribers:
        del index[key]
