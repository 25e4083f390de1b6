"""One client's event stream: replay after ``Last-Event-ID``, then live events.

The stream subscribes to the hub *before* reading the database, and tracks the
last ``seq`` it sent. Org event numbers are contiguous, so a live event that
skips ahead means something was missed (a Redis restart, a slow relay): the
stream fills the gap from the database. Anything at or below the last ``seq``
is a duplicate and is dropped. Together: no gap and no duplicate at the seam
between replay and live.
"""

import json
import logging
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import Engine

from services.api.streaming.hub import STOP, EventHub, encode_frame
from shared.db import session_scope
from shared.events import event_json, events_after, latest_seq
from shared.metrics import EVENTS_DELIVERED, OPEN_STREAMS, STREAM_DISCONNECTS

log = logging.getLogger(__name__)

CATCH_UP_BATCH = 500
T = TypeVar("T")


class OrgEventStream:
    __slots__ = ("_hub", "_engine", "_org_id", "_replay_limit", "last_seq")

    def __init__(self, *, hub: EventHub, engine: Engine, org_id: str, replay_limit: int) -> None:
        self._hub = hub
        self._engine = engine
        self._org_id = org_id
        self._replay_limit = replay_limit
        self.last_seq = 0

    async def frames(self, last_event_id: int | None) -> AsyncIterator[bytes]:
        """Yields encoded SSE messages until the client goes away (the caller
        closes the generator) or falls too far behind."""
        subscriber = self._hub.subscribe(self._org_id)
        OPEN_STREAMS.inc()
        try:
            async for frame in self._opening(last_event_id):
                yield frame
            while True:
                item = await subscriber.get()
                if subscriber.overflowed:
                    STREAM_DISCONNECTS.labels("slow_client").inc()
                    return
                if item == STOP:
                    STREAM_DISCONNECTS.labels("shutdown").inc()
                    return
                if isinstance(item, tuple) and item[0] == self.last_seq + 1:  # next in line
                    self.last_seq = item[0]
                    EVENTS_DELIVERED.inc()
                    yield item[1]
                    continue
                async for frame in self._out_of_line(item):
                    yield frame
        finally:
            self._hub.unsubscribe(subscriber)
            OPEN_STREAMS.dec()

    async def _opening(self, last_event_id: int | None) -> AsyncIterator[bytes]:
        latest = await self._db(partial(latest_seq, org_id=self._org_id))
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

    async def _out_of_line(self, item: tuple[int, bytes] | str) -> AsyncIterator[bytes]:
        """A resync request, a duplicate (dropped), or an event past a gap (the
        gap is filled from the database, this event included)."""
        if isinstance(item, tuple) and item[0] <= self.last_seq:
            return
        async for frame in self._catch_up():
            yield frame

    async def _catch_up(self) -> AsyncIterator[bytes]:
        """Everything after ``last_seq`` from the database, oldest first."""
        while True:
            batch = await self._db(
                partial(
                    events_after,
                    org_id=self._org_id,
                    after_seq=self.last_seq,
                    limit=CATCH_UP_BATCH,
                )
            )
            for event in batch:
                self.last_seq = event.seq
                EVENTS_DELIVERED.inc()
                yield encode_frame(event.seq, event.type, event_json(event))
            if len(batch) < CATCH_UP_BATCH:
                return

    async def _db(self, query: Callable[..., T]) -> T:
        def run() -> T:
            with session_scope(self._engine) as session:
                return query(session)

        return await anyio.to_thread.run_sync(run)
