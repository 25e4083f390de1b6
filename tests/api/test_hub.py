"""The event hub's keep-alive, in process (no Redis: the subscription task is
not started): a stream that keeps getting events is not pinged, an idle one is."""

import asyncio
import json

from redis.asyncio import Redis as AsyncRedis

from services.api.streaming.hub import PING, EventHub, Subscriber

PING_SECONDS = 0.05
DEADLINE_SECONDS = 10.0


def event(seq: int) -> bytes:
    return json.dumps({"org_id": "acme", "id": seq, "type": "handoff_created"}).encode()


def pings(subscriber: Subscriber) -> int:
    return sum(1 for item in subscriber.items if item == PING)


def test_only_streams_without_events_are_pinged() -> None:
    async def run() -> tuple[Subscriber, Subscriber, int]:
        hub = EventHub(AsyncRedis, queue_size=10_000, ping_seconds=PING_SECONDS)
        busy, idle = hub.subscribe("acme"), hub.subscribe("globex")  # globex has no events
        pinger = asyncio.create_task(hub._ping_streams())
        seq = 0
        try:
            async with asyncio.timeout(DEADLINE_SECONDS):
                while pings(idle) < 3:  # three rounds of pings have passed
                    seq += 1
                    hub._dispatch(event(seq))
                    await asyncio.sleep(PING_SECONDS / 5)  # the events' pace
        finally:
            pinger.cancel()
        return busy, idle, seq

    busy, idle, sent = asyncio.run(run())
    assert list(idle.items) == [PING] * 3
    assert [item[0] for item in busy.items] == list(range(1, sent + 1))  # no PING among them
