"""Redis client factories with short timeouts, so an unreachable Redis fails fast
instead of stalling requests (claims then fall back to the database).

Every Redis user of a process (requests, locks, limits, the relay, RQ, the
pub/sub hub) gets its client here, so all of them reach Redis the same way:
``ESCALATIONS_REDIS_URL`` directly, or, with ``ESCALATIONS_REDIS_SENTINELS``
set, the current master named ``ESCALATIONS_REDIS_SENTINEL_MASTER`` as the
sentinels report it. A Sentinel client asks the sentinels again whenever its
connection to the master fails or the old master answers READONLY, so after a
failover each process follows the new master without a restart. The URL still
gives the database number, the master's credentials and TLS settings.
"""

from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.connection import parse_url
from redis.sentinel import Sentinel

from shared.core.settings import Settings

CONNECT_TIMEOUT_SECONDS = 1.0
SOCKET_TIMEOUT_SECONDS = 5.0
#: RESP2: RQ 2.x parses replies in the RESP2 shapes.
CLIENT_OPTIONS: dict[str, Any] = {
    "protocol": 2,
    "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "socket_timeout": SOCKET_TIMEOUT_SECONDS,
    "health_check_interval": 30,
}
#: The pub/sub subscription waits for messages indefinitely: no read timeout.
SUBSCRIBER_OPTIONS: dict[str, Any] = {
    "protocol": 2,
    "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "health_check_interval": 15,
}


def make_redis(url: str) -> Redis:
    """A client for the Redis at ``url`` (no Sentinel)."""
    return Redis.from_url(url, **CLIENT_OPTIONS)


def redis_for(settings: Settings) -> Redis:
    """The process's synchronous client, through Sentinel when it is configured."""
    if not settings.redis_sentinels:
        return make_redis(settings.redis_url)
    sentinel = Sentinel(
        _addresses(settings), sentinel_kwargs=_sentinel_options(settings), **CLIENT_OPTIONS
    )
    return sentinel.master_for(
        settings.redis_sentinel_master, redis_class=Redis, **_master_options(settings)
    )


def async_redis_for(settings: Settings) -> AsyncRedis:
    """An asyncio client (for the pub/sub hub), through Sentinel when it is configured."""
    if not settings.redis_sentinels:
        return AsyncRedis.from_url(settings.redis_url, **SUBSCRIBER_OPTIONS)
    sentinel = AsyncSentinel(
        _addresses(settings), sentinel_kwargs=_sentinel_options(settings), **SUBSCRIBER_OPTIONS
    )
    return sentinel.master_for(
        settings.redis_sentinel_master, redis_class=AsyncRedis, **_master_options(settings)
    )


def _addresses(settings: Settings) -> list[tuple[str, int]]:
    return [(host, int(port)) for host, _, port in map(_rpartition, settings.redis_sentinels)]


def _rpartition(address: str) -> tuple[str, str, str]:
    return address.rpartition(":")


def _sentinel_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
    }
    if settings.redis_sentinel_password:
        options["password"] = settings.redis_sentinel_password
    return options


def _master_options(settings: Settings) -> dict[str, Any]:
    """What the URL says of the master except where it is: database, credentials,
    TLS (a ``rediss://`` URL and its ``ssl_*`` query parameters)."""
    options = parse_url(settings.redis_url)
    for where in ("host", "port", "path", "connection_class"):
        options.pop(where, None)
    if settings.redis_url.startswith("rediss://"):
        options["ssl"] = True
    return options
