"""The assessment job's bookkeeping in real Redis and a real database: duplicate
enqueues, abandoned jobs, and the reconciler that re-enqueues lost work."""

from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import Engine

from services.worker.retries import move_due_retries
from shared.assessments.reconciler import reconcile_assessments, try_reconcile
from shared.assessments.service import begin_attempt, store_assessment
from shared.auth.tokens import Principal
from shared.core import keys
from shared.core.db import session_scope
from shared.core.jobs import (
    SCHEDULE_GRACE_SECONDS,
    JobState,
    assessment_job_state,
    enqueue_assessment,
)
from shared.core.models import Role
from shared.core.settings import Settings
from shared.core.timeutil import utcnow
from shared.handoffs.lifecycle import create_handoff
from shared.handoffs.models import AssessmentData, ConfidenceTier, Handoff, HandoffCreate
from tests.conftest import handoff_body

SAMPLE_ASSESSMENT = AssessmentData(
    summary="Checkout pods are OOMKilled.",
    likely_causes=["Memory limit too low"],
    suggested_steps=["Raise the memory limit"],
    confidence=ConfidenceTier.medium,
    generator="test",
    generated_at="2026-11-26T12:00:00.000000Z",
)
JUNIOR = Principal(user_id="u-1", name="Jo Junior", role=Role.engineer, org_id="acme")


def _create(engine: Engine, session_id: str = "sess-1") -> str:
    with session_scope(engine) as session:
        handoff, _ = create_handoff(
            session=session,
            principal=JUNIOR,
            body=HandoffCreate.model_validate(handoff_body(session_id)),
            claim_sla_seconds=300,
        )
    return handoff.id


def _queued_ids(redis: Redis) -> list[str]:
    return Queue(keys.ASSESSMENTS_QUEUE, connection=redis).get_job_ids()


def test_enqueue_twice_is_a_no_op(engine: Engine, redis: Redis, settings: Settings) -> None:
    handoff_id = _create(engine)
    first = enqueue_assessment(redis, handoff_id=handoff_id, org_id="acme", settings=settings)
    second = enqueue_assessment(redis, handoff_id=handoff_id, org_id="acme", settings=settings)
    assert first.id == second.id == f"assess-{handoff_id}"
    assert _queued_ids(redis) == [first.id]
    assert first.meta == {"handoff_id": handoff_id, "org_id": "acme", "request_id": None}
    assert handoff_id in first.description and first.retries_left == settings.assessment_retries


def test_started_job_without_lease_is_abandoned(
    engine: Engine, redis: Redis, settings: Settings
) -> None:
    handoff_id = _create(engine)
    job = enqueue_assessment(redis, handoff_id=handoff_id, org_id="acme", settings=settings)
    job.set_status(JobStatus.STARTED)
    job.started_at = utcnow() - timedelta(seconds=60)
    job.save()
    redis.set(keys.assessment_lease(handoff_id), "1", px=10_000)
    assert assessment_job_state(redis, handoff_id)[0] is JobState.LIVE
    redis.delete(keys.assessment_lease(handoff_id))
    assert assessment_job_state(redis, handoff_id)[0] is JobState.ABANDONED


def test_just_started_job_gets_grace_to_take_its_lease(
    engine: Engine, redis: Redis, settings: Settings
) -> None:
    handoff_id = _create(engine)
    job = enqueue_assessment(redis, handoff_id=handoff_id, org_id="acme", settings=settings)
    job.set_status(JobStatus.STARTED)
    job.started_at = utcnow()
    job.save()
    assert assessment_job_state(redis, handoff_id)[0] is JobState.LIVE


def test_reconciler_enqueues_handoffs_without_a_job(
    engine: Engine, redis: Redis, settings: Settings
) -> None:
    lost = [_create(engine, f"sess-{n}") for n in range(3)]
    report = reconcile_assessments(engine=engine, redis=redis, settings=settings)
    assert (report.checked, report.enqueued) == (3, 3)
    assert sorted(_queued_ids(redis)) == sorted(f"assess-{h}" for h in lost)
    again = reconcile_assessments(engine=engine, redis=redis, settings=settings)
    assert (again.checked, again.enqueued) == (3, 0)


def test_reconciler_replaces_an_abandoned_job(
    engine: Engine, redis: Redis, settings: Settings
) -> None:
    handoff_id = _create(engine)
    job = enqueue_assessment(redis, handoff_id=handoff_id, org_id="acme", settings=settings)
    Queue(keys.ASSESSMENTS_QUEUE, connection=redis).remove(job)
    job.set_status(JobStatus.STARTED)
    job.started_at = utcnow() - timedelta(seconds=60)
    job.save()
    report = reconcile_assessments(engine=engine, redis=redis, settings=settings)
    assert report.enqueued == 1
    fresh = Job.fetch(job.id, connection=redis)
    assert fresh.get_status() == JobStatus.QUEUED
    assert _queued_ids(redis) == [job.id]


def test_reconciler_skips_ready_assessments(
    engine: Engine, redis: Redis, settings: Settings
) -> None:
    handoff_id = _create(engine)
    with session_scope(engine) as session:
        store_assessment(session=session, handoff_id=handoff_id, assessment=SAMPLE_ASSESSMENT)
    report = reconcile_assessments(engine=engine, redis=redis, settings=settings)
    assert (report.checked, report.enqueued) == (0, 0)


def test_reconciler_leaves_a_job_that_finished_during_its_pass(
    engine: Engine, redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass read the handoff as pending; its job then stored the assessment and
    finished before the pass looked at the job: no second run."""
    handoff_id = _create(engine)

    def finished_meanwhile(_redis: Redis, finished_id: str) -> tuple[JobState, None]:
        with session_scope(engine) as session:
            store_assessment(session=session, handoff_id=finished_id, assessment=SAMPLE_ASSESSMENT)
        return JobState.NONE, None  # RQ shows it finished: not live

    monkeypatch.setattr("shared.assessments.reconciler.assessment_job_state", finished_meanwhile)
    report = reconcile_assessments(engine=engine, redis=redis, settings=settings)
    assert (report.checked, report.enqueued, report.failed) == (1, 0, 0)
    assert _queued_ids(redis) == []
    with session_scope(engine) as session:
        assert session.get(Handoff, handoff_id).assessment_status == "ready"


def test_reconciler_gives_up_after_max_attempts(
    engine: Engine, redis: Redis, settings: Settings
) -> None:
    handoff_id = _create(engine)
    limited = settings.model_copy(update={"assessment_max_attempts": 1})
    with session_scope(engine) as session:
        begin_attempt(session=session, handoff_id=handoff_id)
    report = reconcile_assessments(engine=engine, redis=redis, settings=limited)
    assert (report.enqueued, report.failed) == (0, 1)
    with session_scope(engine) as session:
        assert session.get(Handoff, handoff_id).assessment_status == "failed"


def test_only_one_reconciler_runs_per_interval(
    engine: Engine, redis: Redis, settings: Settings
) -> None:
    _create(engine)
    first = try_reconcile(engine=engine, redis=redis, settings=settings)
    second = try_reconcile(engine=engine, redis=redis, settings=settings)
    assert first is not None and first.enqueued == 1
    assert second is None


def test_reconciler_pages_through_every_pending_assessment(
    engine: Engine, redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared.assessments.reconciler.BATCH_SIZE", 2)
    lost = [_create(engine, f"sess-{n}") for n in range(5)]
    report = reconcile_assessments(engine=engine, redis=redis, settings=settings)
    assert (report.checked, report.enqueued) == (5, 5)
    assert sorted(_queued_ids(redis)) == sorted(f"assess-{h}" for h in lost)


def _schedule(redis: Redis, job: Job, *, at) -> None:
    """What RQ does with a failed try that has retries left."""
    Queue(keys.ASSESSMENTS_QUEUE, connection=redis).schedule_job(job, at)


def test_a_scheduled_retry_is_live_until_long_overdue(
    engine: Engine, redis: Redis, settings: Settings
) -> None:
    handoff_id = _create(engine)
    job = enqueue_assessment(redis, handoff_id=handoff_id, org_id="acme", settings=settings)
    _schedule(redis, job, at=utcnow() + timedelta(seconds=5))
    assert assessment_job_state(redis, handoff_id)[0] is JobState.LIVE
    _schedule(redis, job, at=utcnow() - timedelta(seconds=SCHEDULE_GRACE_SECONDS + 5))
    assert assessment_job_state(redis, handoff_id)[0] is JobState.STALLED


def test_reconciler_replaces_a_stalled_retry(
    engine: Engine, redis: Redis, settings: Settings
) -> None:
    handoff_id = _create(engine)
    job = enqueue_assessment(redis, handoff_id=handoff_id, org_id="acme", settings=settings)
    Queue(keys.ASSESSMENTS_QUEUE, connection=redis).remove(job.id)
    _schedule(redis, job, at=utcnow() - timedelta(minutes=10))
    report = reconcile_assessments(engine=engine, redis=redis, settings=settings)
    assert report.enqueued == 1
    assert _queued_ids(redis) == [job.id]
    assert ScheduledJobRegistry(keys.ASSESSMENTS_QUEUE, connection=redis).get_job_ids() == []


def test_due_retries_move_to_the_queue_and_future_ones_wait(
    engine: Engine, redis: Redis, settings: Settings
) -> None:
    due, later = _create(engine, "sess-due"), _create(engine, "sess-later")
    queue = Queue(keys.ASSESSMENTS_QUEUE, connection=redis)
    for handoff_id, at in ((due, utcnow()), (later, utcnow() + timedelta(minutes=1))):
        job = enqueue_assessment(redis, handoff_id=handoff_id, org_id="acme", settings=settings)
        queue.remove(job.id)
        _schedule(redis, job, at=at)
    assert move_due_retries(redis) == 1
    assert _queued_ids(redis) == [f"assess-{due}"]
    assert Job.fetch(f"assess-{due}", connection=redis).get_status() == JobStatus.QUEUED
    registry = ScheduledJobRegistry(keys.ASSESSMENTS_QUEUE, connection=redis)
    assert registry.get_job_ids() == [f"assess-{later}"]
    assert move_due_retries(redis) == 0  # another worker took this tick's lock
