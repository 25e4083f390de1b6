"""The outbox relay on real Redis and real SQLite and PostgreSQL: a commit's
orgs are relayed at once and in ``seq`` order, relays in parallel split the orgs
without publishing anything twice, an org locked by another relay is retried
when released, and events written while Redis is down are published when it
is back. The poll is pushed out of reach where a test proves the wake-up."""

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis import Redis
from redis.client import PubSub
from sqlalchemy import Engine, func, select, update
from sqlmodel import col

from shared.audit import SYSTEM
from shared.auth.tokens import Principal
from shared.core import keys
from shared.core.db import session_scope
from shared.core.models import Role
from shared.core.redis_client import make_redis
from shared.core.settings import Settings
from shared.events import relay
from shared.events.models import Event, EventType
from shared.events.outbox import Outbox, record_event
from shared.events.relay import EventRelay
from shared.handoffs.lifecycle import create_handoff
from shared.handoffs.models import Handoff, HandoffCreate
from shared.webhooks import subscriptions
from shared.webhooks.models import WebhookCreate
from testkit.procs import free_port, running, start_redis
from tests.conftest import handoff_body

DEADLINE_SECONDS = 10.0


@pytest.fixture
def subscriber(redis: Redis) -> Iterator[PubSub]:
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.EVENTS_CHANNEL)
    yield pubsub
    pubsub.close()


@pytest.fixture
def no_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a commit's wake-up (or a retry) can relay an event."""
    monkeypatch.setattr(relay, "POLL_INTERVAL_SECONDS", 3600.0)


def create_in(engine: Engine, org: str, title: str = "stuck") -> None:
    principal = Principal(user_id="u-1", name="Jo", role=Role.engineer, org_id=org)
    with session_scope(engine) as session:
        create_handoff(
            session=session,
            principal=principal,
            body=HandoffCreate.model_validate(handoff_body(title)),
            claim_sla_seconds=300,
        )


def receive(pubsub: PubSub, count: int) -> list[dict]:
    """``count`` published events, in the order they reached Redis."""
    received: list[dict] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(received) < count:
        assert time.monotonic() < deadline, f"{len(received)} of {count} events arrived"
        message = pubsub.get_message(timeout=0.5)
        if message is not None:
            received.append(json.loads(message["data"]))
    return received


def seqs_by_org(events: list[dict]) -> dict[str, list[int]]:
    by_org: dict[str, list[int]] = defaultdict(list)
    for event in events:
        by_org[event["org_id"]].append(event["id"])
    return dict(by_org)


def unpublished(engine: Engine, org: str | None = None) -> int:
    statement = select(func.count()).where(col(Event.published_at).is_(None))
    if org is not None:
        statement = statement.where(col(Event.org_id) == org)
    with session_scope(engine) as session:
        return int(session.execute(statement).scalar_one())


def test_a_commit_relays_its_orgs_at_once_in_seq_order(
    engine: Engine, redis: Redis, settings: Settings, subscriber: PubSub, no_poll: None
) -> None:
    box = Outbox(engine=engine, redis=redis, settings=settings)
    box.start()
    try:
        for n in range(8):
            for org in ("acme", "globex", "initech"):
                create_in(engine, org, f"stuck {n}")
        events = receive(subscriber, 24)
    finally:
        box.stop()
    assert seqs_by_org(events) == {org: list(range(1, 9)) for org in ("acme", "globex", "initech")}
    assert unpublished(engine) == 0


def test_what_the_fast_path_published_is_marked_soon_without_a_sweep(
    engine: Engine, redis: Redis, settings: Settings, subscriber: PubSub, no_poll: None
) -> None:
    """The org's first event goes by the log path (its last seq is not known yet)
    and wakes the relay; the ones after go by the fast path, which does not."""
    box = Outbox(engine=engine, redis=redis, settings=settings)
    box.start()
    try:
        for rounds in (1, 3):
            for n in range(rounds):
                create_in(engine, "acme", f"stuck {rounds}-{n}")
            assert len(receive(subscriber, rounds)) == rounds
            deadline = time.monotonic() + DEADLINE_SECONDS
            while unpublished(engine) and time.monotonic() < deadline:
                time.sleep(0.01)  # polls the condition: the relay's pass is what it waits for
            assert unpublished(engine) == 0  # marked by a pass, not by a sweep or the stop
    finally:
        box.stop()


def test_relays_in_parallel_split_the_orgs_and_publish_each_event_once(
    engine: Engine, redis: Redis, subscriber: PubSub
) -> None:
    orgs = [f"org-{n}" for n in range(8)]
    for n in range(30):
        for org in orgs:
            create_in(engine, org, f"stuck {n}")  # no outbox started: nothing is relayed
    assert unpublished(engine) == 240
    relays = [EventRelay(engine=engine, redis=redis) for _ in range(3)]
    counts: list[int] = []
    threads = [
        threading.Thread(target=lambda r=r: counts.append(r.relay_pending())) for r in relays
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = receive(subscriber, 240)
    assert sum(counts) == 240
    assert seqs_by_org(events) == {org: list(range(1, 31)) for org in orgs}
    assert unpublished(engine) == 0
    assert subscriber.get_message(timeout=0.2) is None  # nothing twice


def test_the_poll_leaves_a_young_event_to_its_process_then_publishes_it(
    engine: Engine,
    redis: Redis,
    settings: Settings,
    subscriber: PubSub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As if the committing process died before its fast path: nobody publishes the
    event but the poll, and only once it is ``SWEEP_MIN_AGE_SECONDS`` old."""
    monkeypatch.setattr(relay, "POLL_INTERVAL_SECONDS", 0.05)
    monkeypatch.setattr(relay, "SWEEP_MIN_AGE_SECONDS", 0.5)
    committed = time.monotonic()
    create_in(engine, "acme")  # no outbox started here: committed, never published
    assert EventRelay(engine=engine, redis=redis).relay_pending(min_age_seconds=60.0) == 0
    assert unpublished(engine) == 1
    box = Outbox(engine=engine, redis=redis, settings=settings)
    box.start()
    try:
        (event,) = receive(subscriber, 1)
        received = time.monotonic()
    finally:
        box.stop()
    assert event["type"] == EventType.created.value
    assert received - committed >= 0.5
    assert unpublished(engine) == 0


def test_events_published_counts_what_went_on_the_wire_not_what_was_marked(
    engine: Engine, redis: Redis, subscriber: PubSub
) -> None:
    for n in range(3):
        create_in(engine, "acme", f"stuck {n}")
    published = REGISTRY.get_sample_value("escalations_events_published_total") or 0.0
    assert EventRelay(engine=engine, redis=redis).relay_pending() == 3
    assert len(receive(subscriber, 3)) == 3
    # As if a process published them and died before marking: the next relay
    # reads them from the log again, and the script keeps them off the wire.
    with session_scope(engine) as session:
        session.execute(update(Event).values(published_at=None))
        session.commit()
    assert EventRelay(engine=engine, redis=redis).relay_pending() == 3
    assert unpublished(engine) == 0
    assert subscriber.get_message(timeout=0.2) is None
    assert REGISTRY.get_sample_value("escalations_events_published_total") == published + 3


def test_an_org_locked_by_another_relay_is_relayed_when_it_is_released(
    engine: Engine, redis: Redis, settings: Settings, subscriber: PubSub, no_poll: None
) -> None:
    box = Outbox(engine=engine, redis=redis, settings=settings)
    box.start()
    other_relay = redis.lock(keys.relay_lock("acme"), timeout=30)
    assert other_relay.acquire(blocking=False)
    try:
        create_in(engine, "acme")
        create_in(engine, "globex")
        assert seqs_by_org(receive(subscriber, 1)) == {"globex": [1]}  # not held up by acme
        assert unpublished(engine, "acme") == 1
        other_relay.release()
        assert seqs_by_org(receive(subscriber, 1)) == {"acme": [1]}
    finally:
        box.stop()


def test_events_written_while_redis_is_down_are_published_when_it_is_back(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with running(start_redis(port, log_dir=tmp_path)) as server:
        redis = make_redis(url)
        box = Outbox(
            engine=engine, redis=redis, settings=settings.model_copy(update={"redis_url": url})
        )
        box.start()
        try:
            server.stop()
            create_in(engine, "acme", "while down")
            create_in(engine, "acme", "still down")
            assert unpublished(engine) == 2  # delayed, not lost
            with running(start_redis(port, log_dir=tmp_path)):
                create_in(engine, "acme", "back")
                deadline = time.monotonic() + DEADLINE_SECONDS
                while unpublished(engine):  # marked only after Redis took the PUBLISH
                    assert time.monotonic() < deadline, "events stayed unpublished"
                    time.sleep(0.05)
        finally:
            box.stop()
            redis.close()


def publish_first_event(
    engine: Engine, redis: Redis, settings: Settings, subscriber: PubSub, org: str
) -> None:
    """The org's first event, published by an outbox that then stops: Redis knows
    the org's last seq (1) from here on."""
    first = Outbox(engine=engine, redis=redis, settings=settings)
    first.start()
    create_in(engine, org, "one")
    assert seqs_by_org(receive(subscriber, 1)) == {org: [1]}
    first.stop()


def test_a_commit_after_an_unrelayed_event_waits_for_it_and_keeps_seq_order(
    engine: Engine, redis: Redis, settings: Settings, subscriber: PubSub, no_poll: None
) -> None:
    publish_first_event(engine, redis, settings, subscriber, "acme")
    create_in(engine, "acme", "two")  # as if its process died before relaying it
    second = Outbox(engine=engine, redis=redis, settings=settings)
    second.start()
    try:
        create_in(engine, "acme", "three")  # the fast path must not send 3 before 2
        assert seqs_by_org(receive(subscriber, 2)) == {"acme": [2, 3]}
    finally:
        second.stop()
    assert unpublished(engine) == 0


def committed_events(engine: Engine, org: str) -> dict[int, relay.Committed]:
    """The org's events by seq, as the fast path publishes them."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Event).where(col(Event.org_id) == org).order_by(col(Event.seq))
        ).scalars()
        return {
            row.seq: relay.Committed(
                org, row.seq, row.id, json.dumps({"org_id": org, "id": row.seq})
            )
            for row in rows
            if row.id is not None
        }


def test_an_event_that_overtakes_its_predecessor_is_held_until_it_is_out(
    engine: Engine,
    redis: Redis,
    settings: Settings,
    subscriber: PubSub,
    no_poll: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two creates of one org cross between their commits and their publishes:
    the later event waits in Redis and goes out right after the earlier one,
    without the log path, and both are marked."""
    monkeypatch.setattr(relay, "HOLD_GRACE_SECONDS", 3600.0)  # the log path cannot step in
    publish_first_event(engine, redis, settings, subscriber, "acme")
    create_in(engine, "acme", "two")  # committed; the fast path comes below, in reverse
    create_in(engine, "acme", "three")
    box = Outbox(engine=engine, redis=redis, settings=settings)
    box.start()
    logged: list[str] = []
    relay_org = box.relay.relay_org
    monkeypatch.setattr(
        box.relay, "relay_org", lambda org_id: logged.append(org_id) or relay_org(org_id)
    )
    try:
        events = committed_events(engine, "acme")
        box.relay.publish_now([events[3]])
        assert subscriber.get_message(timeout=0.1) is None  # 3 waits for 2
        assert redis.hlen(keys.relay_held("acme")) == 1
        box.relay.publish_now([events[2]])
        assert seqs_by_org(receive(subscriber, 2)) == {"acme": [2, 3]}
        deadline = time.monotonic() + DEADLINE_SECONDS
        while unpublished(engine, "acme"):
            assert time.monotonic() < deadline, "the events stayed unmarked"
            time.sleep(0.01)  # polls the condition: the relay's pass marks them
    finally:
        box.stop()
    assert logged == []
    assert redis.exists(keys.relay_held("acme")) == 0


def test_a_held_event_lost_from_redis_is_published_from_the_log(
    engine: Engine, redis: Redis, settings: Settings, subscriber: PubSub, no_poll: None
) -> None:
    """A held event is not marked published: if Redis loses it (the hold's TTL,
    a restart) the log path publishes it, after its predecessor."""
    publish_first_event(engine, redis, settings, subscriber, "acme")
    create_in(engine, "acme", "two")  # as if its process died before relaying it
    create_in(engine, "acme", "three")
    held = EventRelay(engine=engine, redis=redis)
    held.publish_now([committed_events(engine, "acme")[3]])
    assert redis.delete(keys.relay_held("acme")) == 1
    assert held.relay_pending() == 2
    assert seqs_by_org(receive(subscriber, 2)) == {"acme": [2, 3]}
    assert unpublished(engine, "acme") == 0


def test_a_held_event_whose_redis_restarts_before_its_check_is_published_from_the_log(
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
    no_poll: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis goes down while an event is held, so the relay's check of the hold
    fails, and comes back empty (no hold, no last seq): once it is back the
    relay sends the held event and its predecessor from the log, in order."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    settings = settings.model_copy(update={"redis_url": url})
    with running(start_redis(port, log_dir=tmp_path)) as server:
        redis = make_redis(url)
        box = Outbox(engine=engine, redis=redis, settings=settings)
        box.start()
        create_in(engine, "acme", "one")
        deadline = time.monotonic() + DEADLINE_SECONDS
        while unpublished(engine):  # out and marked: Redis knows the org's last seq
            assert time.monotonic() < deadline, "the first event stayed unpublished"
            time.sleep(0.01)
        box.stop()
        create_in(engine, "acme", "two")  # as if its process died before relaying it
        create_in(engine, "acme", "three")
        box = Outbox(engine=engine, redis=redis, settings=settings)
        box.start()
        try:
            monkeypatch.setattr(relay, "HOLD_GRACE_SECONDS", 3600.0)  # no check before the stop
            box.relay.publish_now([committed_events(engine, "acme")[3]])
            assert redis.hlen(keys.relay_held("acme")) == 1
            server.stop()
            monkeypatch.setattr(relay, "HOLD_GRACE_SECONDS", 0.0)  # the next pass checks
            deadline = time.monotonic() + DEADLINE_SECONDS
            while not box.relay._backing_off:  # the check met Redis down
                assert time.monotonic() < deadline, "the relay never checked the hold"
                time.sleep(0.01)
            assert unpublished(engine, "acme") == 2
            with running(start_redis(port, log_dir=tmp_path)):
                subscriber = redis.pubsub(ignore_subscribe_messages=True)
                subscriber.subscribe(keys.EVENTS_CHANNEL)
                assert seqs_by_org(receive(subscriber, 2)) == {"acme": [2, 3]}
                deadline = time.monotonic() + DEADLINE_SECONDS
                while unpublished(engine, "acme"):
                    assert time.monotonic() < deadline, "the events stayed unmarked"
                    time.sleep(0.01)
                subscriber.close()
        finally:
            box.stop()
            redis.close()


def test_a_rolled_back_event_is_never_published(
    engine: Engine, redis: Redis, settings: Settings, subscriber: PubSub, no_poll: None
) -> None:
    box = Outbox(engine=engine, redis=redis, settings=settings)
    box.start()
    try:
        create_in(engine, "acme", "kept")
        assert [event["type"] for event in receive(subscriber, 1)] == ["handoff_created"]
        with session_scope(engine) as session:
            handoff = session.execute(select(Handoff)).scalars().one()
            record_event(session, handoff=handoff, type=EventType.claimed, actor=None)
            session.rollback()  # its seq 2 goes back to the counter
            session.commit()  # the same session commits again, with nothing written
        create_in(engine, "acme", "next")
        (event,) = receive(subscriber, 1)
    finally:
        box.stop()
    assert (event["id"], event["type"], event["handoff"]["session_id"]) == (
        2,
        "handoff_created",
        "next",
    )


def test_a_commit_wakes_the_dispatcher_only_when_it_wrote_a_delivery(
    engine: Engine, redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Outbox(engine=engine, redis=redis, settings=settings)
    wakes: list[None] = []
    monkeypatch.setattr(box.dispatcher, "notify", lambda: wakes.append(None))
    box.start()
    try:
        create_in(engine, "acme", "no subscriber yet")
        assert wakes == []
        with session_scope(engine) as session:
            subscriptions.create_webhook(
                actor=SYSTEM,
                session=session,
                org_id="acme",
                body=WebhookCreate(url="https://93.184.215.14/hook"),
                allow_private=False,
                max_webhooks=20,
            )
        create_in(engine, "acme", "subscribed")
        assert len(wakes) == 1
    finally:
        box.stop()


def test_a_mark_the_driver_fails_lands_through_sqlalchemy(
    engine: Engine, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL marks on the driver's connection; on a driver error (a dropped
    connection, say) that connection is invalidated and the mark runs again the
    session's way."""
    create_in(engine, "acme")
    with session_scope(engine) as session:
        ids = list(session.execute(select(col(Event.id))).scalars())
    monkeypatch.setattr(relay, "_mark_sql", lambda dialect: "UPDATE no_such_table SET x = 1")
    EventRelay(engine=engine, redis=redis)._mark_published(ids)
    assert unpublished(engine) == 0
