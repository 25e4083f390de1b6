"""The assessment lease on real Redis: one holder at a time, renewed while held,
gone when released, and never dropped by a second run."""

import time

import pytest
from redis import Redis

from services.worker.lease import AssessmentLease, LeaseHeld
from shared.core import keys


def test_a_second_run_cannot_take_or_drop_the_lease(redis: Redis) -> None:
    key = keys.assessment_lease("h-1")
    with AssessmentLease(redis, "h-1", ttl_seconds=5):
        with pytest.raises(LeaseHeld), AssessmentLease(redis, "h-1", ttl_seconds=5):
            pass  # pragma: no cover - never entered
        assert redis.exists(key)  # the refused run left the holder's lease alone
    assert not redis.exists(key)


def test_the_lease_expires_on_its_own_when_its_holder_is_gone(redis: Redis) -> None:
    lease = AssessmentLease(redis, "h-2", ttl_seconds=0.2)
    lease._lock.acquire(blocking=False)  # taken, never renewed: a killed worker
    assert 0 < redis.pttl(keys.assessment_lease("h-2")) <= 200


def test_a_held_lease_is_renewed_past_its_ttl(redis: Redis) -> None:
    """Held for three TTLs, the key never expires: the renewer thread extends
    the token the job's thread took (redis-py's thread-local token once made
    every renewal fail)."""
    key = keys.assessment_lease("h-3")
    ttl_seconds = 0.3
    with AssessmentLease(redis, "h-3", ttl_seconds=ttl_seconds):
        held_since = time.monotonic()
        renewals = 0
        last_ttl = redis.pttl(key)
        while time.monotonic() - held_since < 3 * ttl_seconds:
            ttl = redis.pttl(key)
            assert ttl > 0, "the lease expired while held"
            renewals += ttl > last_ttl
            last_ttl = ttl
    assert renewals >= 2
    assert not redis.exists(key)


def test_leases_are_renewed_and_released_independently(redis: Redis) -> None:
    short, long = keys.assessment_lease("h-4"), keys.assessment_lease("h-5")
    with AssessmentLease(redis, "h-4", ttl_seconds=0.3):
        with AssessmentLease(redis, "h-5", ttl_seconds=5):
            pass
        assert not redis.exists(long)
        held_since = time.monotonic()
        while time.monotonic() - held_since < 0.6:
            assert redis.pttl(short) > 0, "the remaining lease expired while held"
    assert not redis.exists(short)


def test_each_of_leases_taken_one_after_another_is_renewed(redis: Redis) -> None:
    """As jobs run: a lease taken after another is released (the renewer, not woken
    for it, still waits for the first one's renewal), and one due sooner than
    what the renewer waits for (woken for it)."""
    for handoff_id, ttl in (("h-6", 0.3), ("h-7", 0.3), ("h-8", 3.0), ("h-9", 0.3)):
        with AssessmentLease(redis, handoff_id, ttl_seconds=ttl):
            held_since = time.monotonic()
            while time.monotonic() - held_since < 0.6:
                assert redis.pttl(keys.assessment_lease(handoff_id)) > 0, f"{handoff_id} expired"
                time.sleep(0.01)
