"""``shared.core.script_batch`` on a real Redis: calls held until the block ends,
then sent together; a script Redis lost, an error reply, Redis down and an
exception in the block; and the create's job enqueue, written as RQ writes it."""

from typing import Any

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from rq.job import Job, JobStatus

from shared.core import keys
from shared.core.jobs import enqueue_created_assessment, enqueue_new_assessment
from shared.core.redis_client import make_redis
from shared.core.script_batch import batched_scripts, call_script
from shared.core.settings import Settings

#: KEYS[1] gets ARGV[1]; returns the value it replaced.
SET = "return redis.call('SET', KEYS[1], ARGV[1], 'GET')"
FAIL = "return redis.error_reply('no thanks')"


class Outcome:
    def __init__(self) -> None:
        self.results: list[Any] = []
        self.errors: list[RedisError] = []

    def call(self, redis: Redis, script: str, key: str, value: str) -> None:
        call_script(
            redis,
            redis.register_script(script),
            keys=[key],
            args=[value],
            done=self.results.append,
            failed=self.errors.append,
        )


def test_outside_a_block_a_call_runs_at_once(redis: Redis) -> None:
    outcome = Outcome()
    outcome.call(redis, SET, "k", "1")
    assert redis.get("k") == b"1"
    assert (outcome.results, outcome.errors) == ([None], [])


def test_calls_in_a_block_go_out_together_when_it_ends(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = Outcome()
    outcome.call(redis, SET, "warm", "0")  # the script loaded
    evalsha_before = _evalsha_calls(redis)
    pipelines: list[Any] = []
    pipeline = redis.pipeline
    monkeypatch.setattr(redis, "pipeline", lambda **kw: pipelines.append(kw) or pipeline(**kw))
    with batched_scripts(redis):
        outcome.call(redis, SET, "a", "1")
        outcome.call(redis, SET, "a", "2")
        outcome.call(redis, SET, "b", "3")
        assert redis.exists("a", "b") == 0  # nothing sent yet
    assert redis.mget("a", "b") == [b"2", b"3"]
    assert outcome.results == [None, None, b"1", None]  # each its own, in order
    assert pipelines == [{"transaction": False}]  # one round trip
    assert _evalsha_calls(redis) - evalsha_before == 3


def test_a_script_redis_lost_is_loaded_and_run(redis: Redis) -> None:
    outcome = Outcome()
    outcome.call(redis, SET, "warm", "0")  # loaded
    redis.script_flush()
    with batched_scripts(redis):
        outcome.call(redis, SET, "a", "1")
        outcome.call(redis, SET, "b", "2")
    assert redis.mget("a", "b") == [b"1", b"2"]
    assert outcome.errors == []


def test_an_error_reply_fails_its_call_only(redis: Redis) -> None:
    outcome = Outcome()
    with batched_scripts(redis):
        outcome.call(redis, FAIL, "a", "1")
        outcome.call(redis, SET, "b", "2")
    assert redis.get("b") == b"2"
    assert outcome.results == [None]
    assert [str(error) for error in outcome.errors] == ["no thanks"]


def test_redis_down_fails_every_call_and_raises_nothing() -> None:
    down = make_redis("redis://127.0.0.1:1/0")  # nothing listens on port 1
    outcome = Outcome()
    with batched_scripts(down):
        outcome.call(down, SET, "a", "1")
        outcome.call(down, SET, "b", "2")
    assert outcome.results == []
    assert [type(error) for error in outcome.errors] == [RedisConnectionError] * 2
    outcome.call(down, SET, "c", "3")  # alone, too
    assert len(outcome.errors) == 3


def test_calls_are_sent_when_the_block_ends_with_an_exception(redis: Redis) -> None:
    outcome = Outcome()
    with pytest.raises(RuntimeError), batched_scripts(redis):
        outcome.call(redis, SET, "a", "1")
        outcome.call(redis, SET, "b", "2")
        raise RuntimeError("after the commit")
    assert redis.mget("a", "b") == [b"1", b"2"]


def test_a_call_on_another_client_is_not_held(redis: Redis) -> None:
    other = make_redis(_url(redis))
    outcome = Outcome()
    with batched_scripts(redis):
        outcome.call(other, SET, "a", "1")
        assert redis.get("a") == b"1"
    other.close()


@pytest.mark.parametrize("retries", [3, 0])
def test_the_created_assessment_job_is_what_rq_enqueues(redis: Redis, retries: int) -> None:
    """The hash, the queue and RQ's set of queues as ``Queue.enqueue_job`` leaves
    them (``enqueue_new_assessment``), but for the timestamps."""
    settings = Settings(
        dev_mode=True, assessment_retries=retries, assessment_job_timeout_seconds=77
    )
    handoff_id = "6a0f3c1e-0000-4000-8000-000000000001"
    enqueue_new_assessment(redis, handoff_id=handoff_id, org_id="acme", settings=settings)
    theirs = _job_hash(redis, keys.assessment_job_id(handoff_id))
    redis.flushdb()

    with batched_scripts(redis):
        enqueue_created_assessment(redis, handoff_id=handoff_id, org_id="acme", settings=settings)
        assert redis.exists(Job.key_for(keys.assessment_job_id(handoff_id))) == 0
    ours = _job_hash(redis, keys.assessment_job_id(handoff_id))

    assert ours == theirs
    job = Job.fetch(keys.assessment_job_id(handoff_id), connection=redis)
    assert (job.get_status(), job.func_name, job.args, job.meta["org_id"], job.timeout) == (
        JobStatus.QUEUED,
        keys.ASSESS_JOB_FUNC,
        (handoff_id,),
        "acme",
        77,
    )


def _job_hash(redis: Redis, job_id: str) -> dict[bytes, bytes]:
    stored = redis.hgetall(Job.key_for(job_id))
    for timestamp in (b"created_at", b"enqueued_at"):
        assert stored.pop(timestamp).endswith(b"Z")
    return {
        **stored,
        b"queue": b",".join(redis.lrange("rq:queue:assessments", 0, -1)),
        b"queues": b",".join(sorted(redis.smembers("rq:queues"))),
    }


def _evalsha_calls(redis: Redis) -> int:
    return int(redis.info("commandstats")["cmdstat_evalsha"]["calls"])


def _url(redis: Redis) -> str:
    kwargs = redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
