"""The window logic of the abuse limits and the open-stream registry, on
in-process fakeredis (with Lua) and a controllable clock. The same limits over
two real replicas and a real Redis: tests/e2e/test_limits.py."""

import time
from collections.abc import Callable, Iterator

import fakeredis
import limits
import pytest
from pydantic import ValidationError

from shared.core import keys
from shared.core.errors import NotAuthenticated, RateLimited
from shared.core.metrics import RATE_LIMIT_UNAVAILABLE, RATE_LIMITED
from shared.core.ratelimit import CLEAN_SECONDS, Limit, RateLimits
from shared.core.redis_client import make_redis
from shared.core.settings import Settings
from shared.events.stream_registry import StreamRegistry
from tests.conftest import TEST_SECRET

DEADLINE_SECONDS = 5.0


class Clock:
    """``time.time`` under the test's control (the limits, fakeredis and the registry read it)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

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
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())  # not shared with other tests
    yield client
    client.close()


def make_limits(redis, **rates: str) -> RateLimits:
    return RateLimits(
        redis, rates={Limit(name): limits.parse(rate) for name, rate in rates.items()}
    )


def refused(call: Callable[[], None]) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        call()
    return caught.value


def counter(metric, limit: Limit) -> float:
    return metric.labels(limit.value)._value.get()


# --- windows -----------------------------------------------------------------------


def test_past_the_rate_a_request_is_refused_with_whole_seconds_to_wait(fake_redis, clock) -> None:
    rate_limits = make_limits(fake_redis, creates="3/minute")
    before = counter(RATE_LIMITED, Limit.CREATES)
    for _ in range(3):
        rate_limits.hit(Limit.CREATES, "acme", "u-1")
        clock.advance(10)
    error = refused(lambda: rate_limits.hit(Limit.CREATES, "acme", "u-1"))
    assert error.code == "rate_limited"
    assert error.extra == {"limit": "creates", "retry_after": 30}  # the first leaves at t=60
    assert "3 per 1 minute" in error.detail
    assert counter(RATE_LIMITED, Limit.CREATES) == before + 1


def test_the_window_moves_a_refused_request_is_not_counted(fake_redis, clock) -> None:
    rate_limits = make_limits(fake_redis, claims="2/10 seconds")
    rate_limits.hit(Limit.CLAIMS, "acme", "u-1")
    clock.advance(6)
    rate_limits.hit(Limit.CLAIMS, "acme", "u-1")
    refused(lambda: rate_limits.hit(Limit.CLAIMS, "acme", "u-1"))
    clock.advance(4.5)  # the first has left the window; the refused one never entered it
    rate_limits.hit(Limit.CLAIMS, "acme", "u-1")
    # Now t=10.5 and the oldest counted is t=6: it leaves at t=16.
    assert refused(lambda: rate_limits.hit(Limit.CLAIMS, "acme", "u-1")).extra["retry_after"] == 6


def test_retry_after_is_at_least_one_second(fake_redis, clock) -> None:
    rate_limits = make_limits(fake_redis, creates="1/second")
    rate_limits.hit(Limit.CREATES, "acme", "u-1")
    clock.advance(0.999)
    assert refused(lambda: rate_limits.hit(Limit.CREATES, "acme", "u-1")).extra["retry_after"] == 1


def test_each_user_and_org_has_its_own_window(fake_redis, clock) -> None:
    rate_limits = make_limits(fake_redis, creates="1/minute")
    rate_limits.hit(Limit.CREATES, "acme", "u-1")
    rate_limits.hit(Limit.CREATES, "acme", "u-2")
    rate_limits.hit(Limit.CREATES, "globex", "u-1")
    # "/" is limits' separator: these two must not share a key.
    rate_limits.hit(Limit.CREATES, "a/b", "c")
    rate_limits.hit(Limit.CREATES, "a", "b/c")
    refused(lambda: rate_limits.hit(Limit.CREATES, "acme", "u-1"))


def test_limits_with_the_same_rate_count_separately(fake_redis, clock) -> None:
    rate_limits = make_limits(fake_redis, creates="1/minute", claims="1/minute")
    rate_limits.hit(Limit.CREATES, "acme", "u-1")
    rate_limits.hit(Limit.CLAIMS, "acme", "u-1")
    assert refused(lambda: rate_limits.hit(Limit.CLAIMS, "acme", "u-1")).extra["limit"] == "claims"


def test_counters_live_under_the_service_prefix(fake_redis, clock) -> None:
    make_limits(fake_redis, creates="5/minute").hit(Limit.CREATES, "acme", "u-1")
    assert [key.decode() for key in fake_redis.scan_iter()] == [
        f"{keys.RATE_LIMIT_PREFIX}:LIMITER/creates/acme/u-1/5/1/minute"
    ]


# --- failed authentications ------------------------------------------------------------


def test_failed_authentications_block_an_address_for_the_rest_of_the_window(
    fake_redis, clock
) -> None:
    rate_limits = make_limits(fake_redis, auth_failures="2/minute")
    for _ in range(2):
        rate_limits.check(Limit.AUTH_FAILURES, "10.0.0.7")  # checking counts nothing
        with pytest.raises(NotAuthenticated), rate_limits.auth_failures_counted("10.0.0.7"):
            raise NotAuthenticated("Invalid token.")
        clock.advance(20)
    error = refused(lambda: rate_limits.check(Limit.AUTH_FAILURES, "10.0.0.7"))
    assert error.extra == {"limit": "auth_failures", "retry_after": 20}
    rate_limits.check(Limit.AUTH_FAILURES, "10.0.0.8")  # another address is not blocked
    clock.advance(20.5)
    rate_limits.check(Limit.AUTH_FAILURES, "10.0.0.7")  # the first failure left the window


def test_only_refused_credentials_count_as_failures(fake_redis, clock) -> None:
    rate_limits = make_limits(fake_redis, auth_failures="1/minute")
    with rate_limits.auth_failures_counted("10.0.0.7"):
        pass  # accepted
    with pytest.raises(ValueError), rate_limits.auth_failures_counted("10.0.0.7"):
        raise ValueError("not an authentication failure")
    rate_limits.check(Limit.AUTH_FAILURES, "10.0.0.7")


def test_an_address_without_failures_is_not_asked_again_for_half_a_second(
    fake_redis, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clean address's check answers from memory for ``CLEAN_SECONDS``; a failure
    counted by this process forgets it at once; one counted by another replica is
    seen once the memory is over."""
    monotonic = Clock()
    monkeypatch.setattr(time, "monotonic", monotonic)
    here, there = (make_limits(fake_redis, auth_failures="1/minute") for _ in range(2))
    asked = []
    stats = here._limiter.get_window_stats
    monkeypatch.setattr(
        here._limiter, "get_window_stats", lambda *args: asked.append(args) or stats(*args)
    )
    here.check(Limit.AUTH_FAILURES, "10.0.0.7")
    here.check(Limit.AUTH_FAILURES, "10.0.0.7")
    assert len(asked) == 1  # the second from memory
    there.count(Limit.AUTH_FAILURES, "10.0.0.7")  # the window is full, on another replica
    here.check(Limit.AUTH_FAILURES, "10.0.0.7")  # not seen yet: remembered clean
    monotonic.advance(CLEAN_SECONDS)
    refused(lambda: here.check(Limit.AUTH_FAILURES, "10.0.0.7"))
    clock.advance(61)
    here.check(Limit.AUTH_FAILURES, "10.0.0.7")  # clean again, remembered
    with pytest.raises(NotAuthenticated), here.auth_failures_counted("10.0.0.7"):
        raise NotAuthenticated("Invalid token.")
    refused(lambda: here.check(Limit.AUTH_FAILURES, "10.0.0.7"))  # forgotten at once


# --- failing open and turned off ------------------------------------------------------------


def test_an_unreachable_redis_lets_requests_through_and_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable = make_redis("redis://127.0.0.1:1/0")
    rate_limits = make_limits(unreachable, creates="1/minute", auth_failures="1/minute")
    before = counter(RATE_LIMIT_UNAVAILABLE, Limit.CREATES)
    for _ in range(3):
        rate_limits.hit(Limit.CREATES, "acme", "u-1")
    rate_limits.check(Limit.AUTH_FAILURES, "10.0.0.7")
    rate_limits.count(Limit.AUTH_FAILURES, "10.0.0.7")
    assert counter(RATE_LIMIT_UNAVAILABLE, Limit.CREATES) == before + 3
    warnings = [r for r in caplog.records if "letting requests through" in r.getMessage()]
    assert len(warnings) == 1  # not one per request
    unreachable.close()


def test_turned_off_nothing_is_counted(fake_redis, clock) -> None:
    rate_limits = RateLimits(
        fake_redis, rates={Limit.CREATES: limits.parse("1/minute")}, enabled=False
    )
    for _ in range(3):
        rate_limits.hit(Limit.CREATES, "acme", "u-1")
    assert fake_redis.keys() == []


# --- settings ----------------------------------------------------------------------------


def test_defaults() -> None:
    settings = Settings(jwt_secret=TEST_SECRET)
    assert settings.rate_limits_enabled
    assert (settings.rate_limit_creates, settings.rate_limit_claims) == ("30/minute", "60/minute")
    assert (settings.rate_limit_stream_opens, settings.rate_limit_auth_failures) == (
        "30/minute",
        "20/minute",
    )
    assert settings.max_streams_per_user == 24


@pytest.mark.parametrize("rate", ["often", "0/minute", "10/fortnight", "1/second;100/hour", ""])
def test_a_bad_rate_is_a_configuration_error(rate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATIONS_RATE_LIMIT_CLAIMS", rate)
    with pytest.raises(ValidationError, match="rate_limit_claims"):
        Settings(jwt_secret=TEST_SECRET)


def test_rates_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCALATIONS_RATE_LIMIT_AUTH_FAILURES", "5/2 seconds")
    monkeypatch.setenv("ESCALATIONS_MAX_STREAMS_PER_USER", "3")
    settings = Settings(jwt_secret=TEST_SECRET)
    assert settings.rate_limit_auth_failures == "5/2 seconds"
    assert settings.max_streams_per_user == 3


def test_stream_slots_must_be_refreshed_well_before_they_expire() -> None:
    with pytest.raises(ValidationError, match="at least twice"):
        Settings(jwt_secret=TEST_SECRET, stream_slot_refresh_seconds=20, stream_slot_ttl_seconds=30)


# --- the open-stream registry ------------------------------------------------------------


@pytest.fixture
def registry(fake_redis) -> Iterator[StreamRegistry]:
    registry = StreamRegistry(fake_redis, ttl_seconds=30, refresh_seconds=10)
    yield registry
    registry.stop()


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


def test_streams_are_admitted_up_to_the_cap(registry, clock) -> None:
    slots = [registry.admit(org_id="acme", user_id="u-1", cap=3) for _ in range(3)]
    assert all(slots)
    assert registry.admit(org_id="acme", user_id="u-1", cap=3) is None
    assert registry.admit(org_id="acme", user_id="u-2", cap=3) is not None
    assert registry.admit(org_id="globex", user_id="u-1", cap=3) is not None
    assert registry.count(org_id="acme", user_id="u-1") == 3


def test_a_released_stream_frees_its_slot_at_once(registry, clock) -> None:
    registry.start()
    slots = [registry.admit(org_id="acme", user_id="u-1", cap=2) for _ in range(2)]
    assert slots[0] is not None
    registry.release(slots[0])
    registry.release(slots[0])  # twice is harmless
    wait_for(lambda: registry.count(org_id="acme", user_id="u-1") == 1)
    assert registry.admit(org_id="acme", user_id="u-1", cap=2) is not None


def test_a_dead_replicas_streams_stop_counting_after_the_ttl(fake_redis, registry, clock) -> None:
    dead = StreamRegistry(fake_redis, ttl_seconds=30, refresh_seconds=10)  # never refreshes
    assert dead.admit(org_id="acme", user_id="u-1", cap=2) is not None
    assert registry.admit(org_id="acme", user_id="u-1", cap=2) is not None
    assert registry.admit(org_id="acme", user_id="u-1", cap=2) is None
    clock.advance(20)
    registry._sync(refresh=True)  # the live replica's periodic refresh
    clock.advance(10.5)  # 30.5 s after the dead one's last write
    assert registry.count(org_id="acme", user_id="u-1") == 1
    assert registry.admit(org_id="acme", user_id="u-1", cap=2) is not None
    assert registry.admit(org_id="acme", user_id="u-1", cap=2) is None  # the live one still counts


def scores(redis) -> list[float]:
    return [
        score for _, score in redis.zrange(keys.open_streams("acme", "u-1"), 0, -1, withscores=True)
    ]


def test_the_refresh_thread_keeps_open_streams_counted(fake_redis, clock) -> None:
    registry = StreamRegistry(fake_redis, ttl_seconds=0.4, refresh_seconds=0.1)
    # The thread's timing uses the real monotonic clock; scores use the test's clock.
    registry.start()
    try:
        assert registry.admit(org_id="acme", user_id="u-1", cap=1) is not None
        first = scores(fake_redis)
        clock.advance(1)
        wait_for(lambda: scores(fake_redis) > first)  # refreshed: its expiry moved ahead
        assert registry.count(org_id="acme", user_id="u-1") == 1
    finally:
        registry.stop()
    assert registry.count(org_id="acme", user_id="u-1") == 0  # stop removes its own entries


def test_without_redis_a_stream_is_admitted_unchecked() -> None:
    unreachable = make_redis("redis://127.0.0.1:1/0")
    registry = StreamRegistry(unreachable, ttl_seconds=30, refresh_seconds=10)
    slot = registry.admit(org_id="acme", user_id="u-1", cap=1)
    assert slot is not None and not slot.checked
    assert registry.admit(org_id="acme", user_id="u-1", cap=1) is not None
    unreachable.close()


def test_streams_admitted_during_an_outage_are_written_by_the_next_refresh(
    fake_redis, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = StreamRegistry(fake_redis, ttl_seconds=30, refresh_seconds=10)
    outage = fakeredis.FakeServer()
    outage.connected = False
    monkeypatch.setattr(registry, "_admit", fakeredis.FakeRedis(server=outage).register_script("1"))
    slot = registry.admit(org_id="acme", user_id="u-1", cap=1)
    assert slot is not None and not slot.checked
    registry._sync(refresh=True)
    assert registry.count(org_id="acme", user_id="u-1") == 1
