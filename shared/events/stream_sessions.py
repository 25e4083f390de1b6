"""Revocable stream sessions: each stream-cookie token carries a ``jti`` (its
session id). Revoking it writes a Redis key that lives as long as the token
could still be accepted (its ``exp`` plus the clock leeway), and publishes the
id so every API process ends that session's open streams at once.

Both calls raise :class:`ServiceUnavailable` when Redis does not answer: a
revocation that may not have happened is not reported as done, and a cookie
whose revocation cannot be checked is not let in (it fails closed; bearer
streams do not depend on this).
"""

import math
import time

from redis import Redis
from redis.exceptions import RedisError

from shared.core import keys
from shared.core.errors import ServiceUnavailable


def revoke(redis: Redis, *, session_id: str, expires_at: float, leeway_seconds: float) -> None:
    ttl = max(1, math.ceil(expires_at + leeway_seconds - time.time()))
    try:
        with redis.pipeline(transaction=False) as pipeline:
            pipeline.set(keys.revoked_stream_session(session_id), b"1", ex=ttl)
            pipeline.publish(keys.STREAM_REVOCATIONS_CHANNEL, session_id)
            pipeline.execute()
    except RedisError as exc:
        raise _unavailable("revoke") from exc


def is_revoked(redis: Redis, session_id: str) -> bool:
    try:
        return bool(redis.exists(keys.revoked_stream_session(session_id)))
    except RedisError as exc:
        raise _unavailable("check") from exc


def _unavailable(action: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Could not {action} the stream session: Redis is unavailable; retry shortly.",
        code="redis_unavailable",
    )
