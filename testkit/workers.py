"""``escalations worker`` processes for end-to-end tests and benchmarks."""

from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from testkit.procs import Proc, escalations_binary, spawn, wait_until


def start_worker(
    name: str, *options: str, env: dict[str, str], log_dir: Path, redis: Redis
) -> Proc:
    """An ``escalations worker`` named ``name``, returned once RQ lists it in Redis."""
    argv = [escalations_binary(), "worker", "--name", name, *options]
    proc = spawn(name, argv, port=0, log_dir=log_dir, env=env)
    try:
        wait_until(lambda: _registered(redis, name), proc=proc, what="worker registration")
    except BaseException:
        proc.stop()
        raise
    return proc


def _registered(redis: Redis, name: str) -> bool:
    try:
        return bool(redis.sismember("rq:workers", f"rq:worker:{name}"))
    except RedisError:
        return False
