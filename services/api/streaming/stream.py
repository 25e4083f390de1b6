"""One client's event stream: replay after ``Last-Event-ID``, then live events.

The stream subscribes to the hub *before* reading the database, and tracks the
last ``seq`` it sent. Org event numbers are contiguous, so a live event that
skips ahead means something was missed (a Redis restart, a slow relay): the
stream fills the gap from the database. Anything at or below the last ``seq``
is a duplicate and is dropped. Together: no gap and no duplicate at the seam
between replay and live.

Replay reads the database in pages of at most ``replay_batch_bytes`` of event
JSON (an event carries a slim handoff of a few KiB; an event stored before events
were slim holds the whole handoff and is slimmed as it is read), spliced into
frames, and at most ``EventHub.replay_limiter``'s number of
pages are read at once per process: a burst of reconnects costs a few MiB, not
a copy of the event log per client. Opening reads (the org's latest ``seq``)
are bounded the same way, by ``EventHub.open_limiter``.

The stream ends with a ``session_expired`` event when its token expires or its
cookie session is revoked (the hub ends the subscriber), and without one when the
client is too slow or the server shuts down.
"""

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import Engine

from services.api.streaming.hub import PING, STOP, EventHub, Frame, Subscriber, encode_frame
from shared.core.db import session_scope
from shared.core.metrics import EVENTS_DELIVERED, OPEN_STREAMS, STREAM_DISCONNECTS
from shared.events.record import latest_seq, replay_page

log = logging.getLogger(__name__)

#: At most this many events per replay page, however small. A page's sizes are
#: read first; the stream asks for about twice as many as its last page held
#: (from ``CATCH_UP_FIRST_PROBE``), so big events do not make it measure 500 each time.
CATCH_UP_MAX_EVENTS = 500
CATCH_UP_FIRST_PROBE = 64
SESSION_EXPIRED = "session_expired"
PING_FRAME = b": ping\n\n"  # an SSE comment: clients ignore it, proxies see traffic
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StreamAccess:
    """Who may read the stream, and until when: the token's ``exp`` (Unix
    seconds) and, for a cookie, its session id (``jti``)."""

    org_id: str
    expires_at: float | None = None
    session_id: str | None = None


class OrgEventStream:
    __slots__ = (
        "_hub", "_engine", "_access", "_replay_limit", "_batch_bytes", "_probe", "last_seq",
        "write_now", "_subscriber",
    )  # fmt: skip

    def __init__(
        self,
        *,
        hub: EventHub,
        engine: Engine,
        access: StreamAccess,
        replay_limit: int,
        replay_batch_bytes: int,
    ) -> None:
        self._hub = hub
        self._engine = engine
        self._access = access
        self._replay_limit = replay_limit
        self._batch_bytes = replay_batch_bytes
        self._probe = CATCH_UP_FIRST_PROBE
        self.last_seq = 0
        #: The response's ``write_now``, when it has one: see ``write_parked``.
        self.write_now: Callable[[bytes], bool] | None = None
        self._subscriber: Subscriber | None = None

    @property
    def _org_id(self) -> str:
        return self._access.org_id

    async def frames(self, last_event_id: int | None) -> AsyncGenerator[bytes, None]:
        """Yields encoded SSE messages until the client goes away (the caller
        closes the generator), falls too far behind, or its session ends."""
        subscriber = self._hub.subscribe(
            self._org_id, expires_at=self._access.expires_at, session_id=self._access.session_id
        )
        if self.write_now is not None:
            self._subscriber = subscriber
            subscriber.write = self.write_parked
        OPEN_STREAMS.inc()
        try:
            async for frame in self._opening(last_event_id):
                if subscriber.ended:
                    break
                yield frame
            while subscriber.ended is None:
                item = await subscriber.get()
                if subscriber.ended is not None:
                    break
                if subscriber.overflowed:
                    STREAM_DISCONNECTS.labels("slow_client").inc()
                    return
                if item == STOP:
                    STREAM_DISCONNECTS.labels("shutdown").inc()
                    return
                if item == PING:
                    yield PING_FRAME
                    continue
                if isinstance(item, tuple) and item[0] == self.last_seq + 1:  # next in line
                    self.last_seq = item[0]
                    EVENTS_DELIVERED.inc()
                    yield item[1]
                    continue
                async for frame in self._out_of_line(item, subscriber):
                    yield frame
            yield self._session_end(subscriber)
        finally:
            subscriber.write = self._subscriber = None
            self._hub.unsubscribe(subscriber)
            OPEN_STREAMS.dec()

    def write_parked(self, frame: Frame) -> bool:
        """The hub's shortcut: the next event in line, written at once while this
        stream waits for its inbox with nothing buffered (so no send, catch-up or
        opening of its own is under way, and order is kept). False (nothing
        written) otherwise, or when the write would have to wait for the client:
        then the event goes to the inbox as usual."""
        seq, data = frame
        subscriber = self._subscriber
        if seq != self.last_seq + 1 or subscriber is None or not subscriber.parked:
            return False
        if self.write_now is None or not self.write_now(data):
            return False
        self.last_seq = seq
        EVENTS_DELIVERED.inc()
        return True

    def _session_end(self, subscriber: Subscriber) -> bytes:
        STREAM_DISCONNECTS.labels(f"session_{subscriber.ended}").inc()
        data = json.dumps({"reason": subscriber.ended, "last_event_id": self.last_seq})
        return encode_frame(self.last_seq, SESSION_EXPIRED, data)

    async def _opening(self, last_event_id: int | None) -> AsyncIterator[bytes]:
        latest = await self._db(
            partial(latest_seq, org_id=self._org_id), limiter=self._hub.open_limiter
        )
        if last_event_id is not None and self._replayable(last_event_id, latest):
            self.last_seq = last_event_id
            async for frame in self._catch_up():
                yield frame
        elif last_event_id is not None:
            self.last_seq = latest
            yield encode_frame(latest, "reset", json.dumps({"last_event_id": latest}))
        else:
            self.last_seq = latest
        yield encode_frame(self.last_seq, "ready", json.dumps({"last_event_id": self.last_seq}))

    def _replayable(self, last_event_id: int, latest: int) -> bool:
        return 0 <= last_event_id <= latest and latest - last_event_id <= self._replay_limit

    async def _out_of_line(
        self, item: tuple[int, bytes] | str, subscriber: Subscriber
    ) -> AsyncIterator[bytes]:
        """A resync request, a duplicate (dropped), or an event past a gap (the
        gap is filled from the database, this event included)."""
        if isinstance(item, tuple) and item[0] <= self.last_seq:
            return
        async for frame in self._catch_up():
            if subscriber.ended is not None:
                return
            yield frame

    async def _catch_up(self) -> AsyncIterator[bytes]:
        """Everything after ``last_seq`` from the database, oldest first, one
        bounded page at a time (a page is dropped before the next is read)."""
        while True:
            page = await self._db(
                partial(
                    replay_page,
                    org_id=self._org_id,
                    after_seq=self.last_seq,
                    max_bytes=self._batch_bytes,
                    max_events=self._probe,
                ),
                limiter=self._hub.replay_limiter,
            )
            self._probe = min(CATCH_UP_MAX_EVENTS, max(8, 2 * len(page.events)))
            for event in page.events:
                self.last_seq = event.seq
                EVENTS_DELIVERED.inc()
                yield encode_frame(event.seq, event.type, event.json)
            if not page.more:
                return

    async def _db(self, query: Callable[..., T], *, limiter: anyio.CapacityLimiter) -> T:
        def run() -> T:
            with session_scope(self._engine) as session:
                return query(session)

        return await anyio.to_thread.run_sync(run, limiter=limiter)
