"""The assessment lease on real Redis: one holder at a time, renewed while held,
gone when released, and never dropped by a second run."""

import pytest
from redis import Redis

from services.worker.lease import AssessmentLease, LeaseHeld
from shared import keys


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
