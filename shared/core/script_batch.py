"""Lua script calls of one request, sent in one Redis round trip.

A create publishes its event (the outbox's fast path) and enqueues its
assessment job after its commit: two round trips, each a few hundred µs of a
replica's CPU under load (redis-py's pool, packing and parsing, and the
thread's wake-up: a `PING` costs twice its single-thread CPU with 32 threads
calling). Inside ``batched_scripts(redis)`` those calls, made with
``call_script``, wait and go out together in one pipeline when the block ends
(also when it ends with an exception: what was committed is still published).
Outside a block, ``call_script`` calls the script at once.

Each call gives ``done`` (its result) and ``failed`` (a ``RedisError``) and
never raises: the callers' own fallbacks (the relay's log path, the
reconciler) take over a failure, as they did when their calls raised."""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError, RedisError


@dataclass(frozen=True, slots=True)
class _Call:
    script: Script
    keys: Sequence[Any]
    args: Sequence[Any]
    done: Callable[[Any], None]
    failed: Callable[[RedisError], None]


@dataclass
class _Batch:
    redis: Redis
    calls: list[_Call] = field(default_factory=list)


_batch: ContextVar[_Batch | None] = ContextVar("script_batch", default=None)


def call_script(
    redis: Redis,
    script: Script,
    *,
    keys: Sequence[Any],
    args: Sequence[Any],
    done: Callable[[Any], None],
    failed: Callable[[RedisError], None],
) -> None:
    """Run ``script`` on ``redis``: at the end of the current ``batched_scripts``
    block on the same client, else now. Never raises."""
    call = _Call(script, keys, args, done, failed)
    batch = _batch.get()
    if batch is not None and batch.redis is redis:
        batch.calls.append(call)
    else:
        _run_alone(redis, call)


@contextmanager
def batched_scripts(redis: Redis) -> Iterator[None]:
    """Hold ``call_script``'s calls on ``redis`` made in this block (this
    thread's context) and send them in one pipeline when it ends."""
    batch = _Batch(redis)
    token = _batch.set(batch)
    try:
        yield
    finally:
        _batch.reset(token)
        _send(batch)


def _send(batch: _Batch) -> None:
    if not batch.calls:
        return
    if len(batch.calls) == 1:
        _run_alone(batch.redis, batch.calls[0])
        return
    try:
        with batch.redis.pipeline(transaction=False) as pipe:
            for call in batch.calls:
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            results = pipe.execute(raise_on_error=False)
    except RedisError as exc:
        for call in batch.calls:
            call.failed(exc)
        return
    for call, result in zip(batch.calls, results, strict=True):
        if isinstance(result, NoScriptError):  # Redis restarted or flushed its scripts
            _run_alone(batch.redis, call)  # the script object loads it
        elif isinstance(result, RedisError):
            call.failed(result)
        else:
            call.done(result)


def _run_alone(redis: Redis, call: _Call) -> None:
    try:
        result = call.script(keys=call.keys, args=call.args, client=redis)
    except RedisError as exc:
        call.failed(exc)
        return
    call.done(result)
