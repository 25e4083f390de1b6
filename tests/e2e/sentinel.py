"""A Redis Sentinel deployment on 127.0.0.1 for end-to-end tests: a primary, one
replica and three sentinels (Debian's ``redis-sentinel``), with timeouts short
enough that a killed primary is replaced within seconds. With ``proxied``, the
primary is known to everyone (sentinels, the replica, clients) by the address
of a ``FaultProxy`` in front of it, so a test can land a fault on one command."""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from testkit.procs import HOST, Proc, ProcessError, free_port, spawn, start_redis, wait_until
from tests.e2e.fault_proxy import FaultProxy

MASTER = "escalations"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


@dataclass
class SentinelCluster:
    primary: Proc
    replica: Proc
    sentinels: list[Proc]
    proxy: FaultProxy | None = None

    @property
    def addresses(self) -> str:
        """``ESCALATIONS_REDIS_SENTINELS``."""
        return ",".join(f"{HOST}:{sentinel.port}" for sentinel in self.sentinels)

    def master_port(self) -> int | None:
        """The master's port as the first sentinel that answers reports it."""
        for sentinel in self.sentinels:
            client = Redis(host=HOST, port=sentinel.port, socket_timeout=1, decode_responses=True)
            try:
                _, port = client.sentinel_get_master_addr_by_name(MASTER)
                return int(port)
            except (RedisError, TypeError, ValueError):
                continue
            finally:
                client.close()
        return None

    def stop(self) -> None:
        for proc in (*self.sentinels, self.replica, self.primary):
            proc.stop()
        if self.proxy is not None:
            self.proxy.stop()


def sentinel_binary() -> str:
    binary = shutil.which("redis-sentinel")
    if binary is None:
        raise ProcessError("redis-sentinel is not installed (.ci/run installs Debian's)")
    return binary


@contextmanager
def sentinel_cluster(
    *, log_dir: Path, down_after_ms: int = DOWN_AFTER_MS, proxied: bool = False
) -> Iterator[SentinelCluster]:
    """Primary, replica (in sync on return) and three sentinels that all see both;
    a primary unanswering for ``down_after_ms`` is failed over."""
    primary = start_redis(free_port(), log_dir=log_dir)
    proxy = FaultProxy(primary.port).start() if proxied else None
    address = proxy.port if proxy is not None else primary.port
    try:
        replica = start_redis(free_port(), log_dir=log_dir, replica_of=address)
    except BaseException:
        primary.stop()
        if proxy is not None:
            proxy.stop()
        raise
    cluster = SentinelCluster(primary, replica, [], proxy)
    try:
        wait_until(lambda: _in_sync(replica.port), proc=replica, what="replication in sync")
        for _ in range(3):
            sentinel = _start_sentinel(address, log_dir=log_dir, down_after_ms=down_after_ms)
            cluster.sentinels.append(sentinel)
        for sentinel in cluster.sentinels:
            wait_until(
                lambda s=sentinel: _sees(s.port, replicas=1, sentinels=2),
                proc=sentinel,
                what="the replica and the other sentinels",
            )
        yield cluster
    finally:
        cluster.stop()


def _start_sentinel(primary_port: int, *, log_dir: Path, down_after_ms: int) -> Proc:
    port = free_port()
    config = log_dir / f"sentinel-{port}.conf"  # sentinels rewrite their own configuration
    config.write_text(
        "\n".join([
            f"port {port}",
            f"bind {HOST}",
            f"dir {log_dir}",
            f"sentinel monitor {MASTER} {HOST} {primary_port} 2",
            f"sentinel down-after-milliseconds {MASTER} {down_after_ms}",
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER} 1",
            "",
        ])
    )  # fmt: skip
    return spawn(f"sentinel-{port}", [sentinel_binary(), str(config)], port=port, log_dir=log_dir)


def _in_sync(port: int) -> bool:
    try:
        info = Redis(host=HOST, port=port, socket_timeout=1).info("replication")
    except RedisError:
        return False
    return info.get("master_link_status") == "up"


def _sees(port: int, *, replicas: int, sentinels: int) -> bool:
    client = Redis(host=HOST, port=port, socket_timeout=1, decode_responses=True)
    try:
        master = client.sentinel_master(MASTER)
    except RedisError:
        return False
    finally:
        client.close()
    return (
        int(master.get("num-slaves", 0)) >= replicas
        and int(master.get("num-other-sentinels", 0)) >= sentinels
    )
