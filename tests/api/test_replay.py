"""Replay after ``Last-Event-ID`` reads the event log in pages bounded by bytes:
an event stored before events were slim carries its whole handoff (a transcript
makes one ~200 KB; these are such rows), so a page of 500 events would be ~100 MB
per stream."""

import json
import tracemalloc
import uuid
from collections.abc import Iterator

import anyio
import pytest
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import Engine
from sqlmodel import select

from services.api.streaming.hub import EventHub
from services.api.streaming.stream import OrgEventStream, StreamAccess
from shared.core.db import session_scope
from shared.core.timeutil import utcnow
from shared.events.models import Event
from shared.events.record import event_json, replay_page
from tests.conftest import REDIS_URL

EVENT_BYTES = 200 * 1024
BUDGET = 1024 * 1024


def big_handoff(n: int) -> dict[str, object]:
    message = {"role": "user", "content": f"step {n}: " + "x" * 490}
    return {"id": str(uuid.uuid4()), "n": n, "transcript": [message] * (EVENT_BYTES // 512)}


def add_events(engine: Engine, count: int, *, org_id: str = "acme") -> None:
    with session_scope(engine) as session:
        for seq in range(1, count + 1):
            handoff = big_handoff(seq)
            session.add(
                Event(
                    org_id=org_id,
                    seq=seq,
                    type="handoff_created",
                    handoff_id=handoff["id"],
                    at=utcnow(),
                    handoff=handoff,
                    request_id=f"req-{seq}",
                )  # fmt: skip
            )
        session.commit()


@pytest.fixture
def big_events(engine: Engine) -> Iterator[Engine]:
    add_events(engine, 60)  # 12 MB of events
    yield engine


def test_every_page_stays_within_the_byte_budget_and_pages_cover_everything(
    big_events: Engine,
) -> None:
    seen: list[int] = []
    with session_scope(big_events) as session:
        after, more = 0, True
        while more:
            page = replay_page(
                session, org_id="acme", after_seq=after, max_bytes=BUDGET, max_events=500
            )
            assert page.events, "a page always holds at least one event"
            assert sum(len(e.json) for e in page.events) <= BUDGET + 1024 * len(page.events)
            seen += [e.seq for e in page.events]
            after, more = page.events[-1].seq, page.more
    assert seen == list(range(1, 61))


def test_an_event_larger_than_the_budget_comes_alone(big_events: Engine) -> None:
    with session_scope(big_events) as session:
        page = replay_page(session, org_id="acme", after_seq=0, max_bytes=1024, max_events=500)
    assert [e.seq for e in page.events] == [1] and page.more


def test_replayed_json_is_the_published_json(big_events: Engine) -> None:
    with session_scope(big_events) as session:
        page = replay_page(session, org_id="acme", after_seq=9, max_bytes=BUDGET, max_events=2)
        stored = session.exec(select(Event).where(Event.seq == 10)).one()
        assert json.loads(page.events[0].json) == json.loads(event_json(stored))
    assert [e.seq for e in page.events] == [10, 11] and page.more


def test_replaying_sixty_200_kb_events_holds_a_few_mib_not_all_of_them(
    big_events: Engine,
) -> None:
    """Peak memory while a stream replays 12 MB of events from ``Last-Event-ID: 0``:
    one page at a time, not the whole log (the old 500-event batches held all 60,
    decoded, ~30 MB)."""

    async def replay() -> tuple[list[int], int]:
        # Not started (no Redis needed): replay only reads the database.
        hub = EventHub(lambda: AsyncRedis.from_url(REDIS_URL), queue_size=16)
        stream = OrgEventStream(
            hub=hub, engine=big_events, access=StreamAccess(org_id="acme"),
            replay_limit=10_000, replay_batch_bytes=BUDGET,
        )  # fmt: skip
        ids: list[int] = []
        tracemalloc.start()
        try:
            frames = stream.frames(0)
            async for frame in frames:
                ids.append(int(frame.split(b"\n", 1)[0].removeprefix(b"id: ")))
                if frame.startswith(b"id: 60\n") or b"event: ready" in frame[:40]:
                    break
            await frames.aclose()
            return ids, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    ids, peak = anyio.run(replay)
    assert ids[:60] == list(range(1, 61))
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
