"""Presence on the test's real Redis, with the clock under the test's control
(scores are the writer's clock; key TTLs are real but far longer than a test).
Over two real replicas: tests/e2e/test_presence.py; over HTTP: tests/api/test_presence.py."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from redis import Redis

from shared.auth.tokens import Principal
from shared.core.errors import ServiceUnavailable
from shared.core.models import Role
from shared.core.redis_client import make_redis
from shared.events.stream_registry import StreamRegistry, StreamSlot
from shared.routing.presence import Person, Presence, PresentPerson, present_as

HEARTBEAT_SECONDS = 60
SLOT_TTL_SECONDS = 30
DANA = Person(id="u:42", name="Dana | Senior", role=Role.senior)
ALEX = Person(id="u-7", name="Alex Admin", role=Role.admin)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.25

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    return clock


@pytest.fixture
def presence(redis: Redis) -> Presence:
    return Presence(redis, heartbeat_seconds=HEARTBEAT_SECONDS, stream_ttl_seconds=SLOT_TTL_SECONDS)


def new_registry(redis: Redis, presence: Presence) -> StreamRegistry:
    """A replica's registry whose thread is never started: the test runs its syncs."""
    return StreamRegistry(
        redis, ttl_seconds=SLOT_TTL_SECONDS, refresh_seconds=10, presence=presence
    )


@pytest.fixture
def registry(redis: Redis, presence: Presence) -> Iterator[StreamRegistry]:
    registry = new_registry(redis, presence)
    yield registry
    registry.stop()


def listed(presence: Presence, org_id: str = "acme") -> dict[str, PresentPerson]:
    return {person.id: person for person in presence.present(org_id=org_id).items}


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def open_stream(
    registry: StreamRegistry, person: Person | None, org_id: str = "acme"
) -> StreamSlot:
    user_id = person.id if person else "engineer-1"
    slot = registry.admit(org_id=org_id, user_id=user_id, cap=None, person=person)
    assert slot is not None and slot.checked
    return slot


def close_stream(registry: StreamRegistry, slot: StreamSlot) -> None:
    registry.release(slot)
    registry._sync(refresh=False)  # what the registry's thread does at once


def test_a_heartbeat_makes_a_person_present_until_it_expires(presence, clock) -> None:
    started = clock.now
    presence.heartbeat(org_id="acme", person=DANA)
    assert listed(presence) == {
        "u:42": PresentPerson(
            id="u:42", name="Dana | Senior", role=Role.senior, since=at(started), streams=0
        )
    }
    clock.advance(HEARTBEAT_SECONDS - 1)
    presence.heartbeat(org_id="acme", person=DANA)  # still present: since is kept
    clock.advance(HEARTBEAT_SECONDS - 1)
    assert listed(presence)["u:42"].since == at(started)
    clock.advance(1.5)
    assert listed(presence) == {}


def test_since_starts_again_after_a_gap(presence, clock) -> None:
    presence.heartbeat(org_id="acme", person=DANA)
    clock.advance(HEARTBEAT_SECONDS + 5)  # gone, and nobody listed in between
    presence.heartbeat(org_id="acme", person=DANA)
    assert listed(presence)["u:42"].since == at(clock.now)


def test_open_streams_make_seniors_and_admins_present_and_are_counted(
    presence, registry, clock
) -> None:
    started = clock.now
    first = open_stream(registry, DANA)
    clock.advance(2)
    open_stream(registry, DANA)
    open_stream(registry, ALEX)
    open_stream(registry, None)  # an engineer's stream counts for nobody
    people = listed(presence)
    assert {person_id: p.streams for person_id, p in people.items()} == {"u:42": 2, "u-7": 1}
    assert people["u:42"].since == at(started)  # the second stream continued the presence
    assert people["u-7"].role is Role.admin
    close_stream(registry, first)
    assert listed(presence)["u:42"].streams == 1


def test_a_closed_stream_stops_counting_at_once(presence, registry, clock) -> None:
    slot = open_stream(registry, DANA)
    close_stream(registry, slot)
    assert listed(presence) == {}
    presence.heartbeat(org_id="acme", person=DANA)  # present again: a new presence
    assert listed(presence)["u:42"].since == at(clock.now)


def test_a_stream_and_a_heartbeat_both_count(presence, registry, clock) -> None:
    started = clock.now
    slot = open_stream(registry, DANA)
    clock.advance(5)
    presence.heartbeat(org_id="acme", person=DANA)
    close_stream(registry, slot)
    assert listed(presence)["u:42"] == PresentPerson(
        id="u:42", name="Dana | Senior", role=Role.senior, since=at(started), streams=0
    )


def test_a_dead_replicas_streams_stop_counting_after_the_slot_ttl(
    redis, presence, registry, clock
) -> None:
    dead = new_registry(redis, presence)  # never refreshes again
    open_stream(dead, DANA)
    open_stream(registry, ALEX)
    clock.advance(20)
    registry._sync(refresh=True)  # the live replica's periodic refresh
    clock.advance(SLOT_TTL_SECONDS - 20 + 0.5)
    assert set(listed(presence)) == {"u-7"}


def test_a_refresh_records_people_again_after_redis_lost_its_keys(
    redis, presence, registry, clock
) -> None:
    open_stream(registry, DANA)
    redis.flushdb()
    clock.advance(3)
    registry._sync(refresh=True)
    assert listed(presence)["u:42"].since == at(clock.now)  # a new presence
    assert listed(presence)["u:42"].streams == 1


def test_a_refresh_keeps_exactly_the_open_streams_of_each_person(
    redis, presence, registry, clock
) -> None:
    """Several streams per person and per key, some closed in one sync: the
    refresh writes each sorted set in one command, member for member."""
    dana = [open_stream(registry, DANA) for _ in range(5)]
    alex = [open_stream(registry, ALEX) for _ in range(3)]
    engineer = [open_stream(registry, None) for _ in range(4)]
    for slot in (dana[0], dana[3], alex[1], engineer[2]):
        registry.release(slot)
    clock.advance(20)
    registry._sync(refresh=True)  # the removals and the refresh in one pipeline
    clock.advance(SLOT_TTL_SECONDS - 20 + 0.5)  # only what this refresh wrote still counts
    people = listed(presence)
    assert {person_id: p.streams for person_id, p in people.items()} == {"u:42": 3, "u-7": 2}
    assert registry.count(org_id="acme", user_id="engineer-1") == 3


def test_another_orgs_people_never_appear(presence, registry, clock) -> None:
    open_stream(registry, DANA, org_id="globex")
    presence.heartbeat(org_id="globex", person=ALEX)
    assert listed(presence, "acme") == {}
    assert set(listed(presence, "globex")) == {"u:42", "u-7"}


def test_present_as_leaves_engineers_out() -> None:
    def principal(role: Role) -> Principal:
        return Principal(user_id="u-1", name="One", role=role, org_id="acme")

    assert present_as(principal(Role.engineer)) is None
    assert present_as(principal(Role.senior)) == Person(id="u-1", name="One", role=Role.senior)
    assert present_as(principal(Role.admin)) is not None


def test_without_redis_presence_is_unavailable() -> None:
    unreachable = make_redis("redis://127.0.0.1:1/0")
    presence = Presence(unreachable, heartbeat_seconds=60, stream_ttl_seconds=30)
    try:
        for call in (
            lambda: presence.present(org_id="acme"),
            lambda: presence.heartbeat(org_id="acme", person=DANA),
        ):
            with pytest.raises(ServiceUnavailable) as caught:
                call()
            assert caught.value.code == "presence_unavailable"
    finally:
        unreachable.close()
