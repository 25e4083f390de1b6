"""Redis client factory with short timeouts, so an unreachable Redis fails fast
instead of stalling requests (claims then fall back to the database)."""

from redis import Redis

CONNECT_TIMEOUT_SECONDS = 1.0
SOCKET_TIMEOUT_SECONDS = 5.0


def make_redis(url: str) -> Redis:
    # RESP2: RQ 2.x parses replies in the RESP2 shapes.
    return Redis.from_url(
        url,
        protocol=2,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )
