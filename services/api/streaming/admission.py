"""Who may open an event stream, and the slot it holds while open.

Before a stream starts: the caller is authenticated as on every route
(``services.api.authentication``: the failed-authentication limit, then the
bearer token or the stream cookie; the org's people remember the caller); the
caller's stream opens are counted per (org, user);
and the stream takes one of the user's ``max_streams_per_user`` slots in the
registry shared by every replica. With the limits off there is no cap, but the
stream is registered all the same: a senior's or admin's open stream makes them
present (``shared.routing.presence``). The slot is given back when the stream ends,
however it ends. All Redis calls run on a worker thread, never on the event loop.
"""

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.requests import Request

from shared.auth.tokens import Principal
from shared.core.metrics import RATE_LIMIT_UNAVAILABLE, RATE_LIMITED
from shared.core.ratelimit import Limit, RateLimits, refusal
from shared.core.settings import Settings
from shared.events.stream_registry import StreamRegistry, StreamSlot
from shared.routing.presence import present_as


@asynccontextmanager
async def admitted_stream(
    request: Request, authenticate: Callable[[], Principal]
) -> AsyncIterator[Principal]:
    """Yields the caller ``authenticate`` returns, holding a stream slot until
    the block exits. Raises ``RateLimited`` or whatever ``authenticate`` raises."""
    state = request.app.state
    principal, slot = await anyio.to_thread.run_sync(
        _admit, state.rate_limits, state.stream_registry, state.settings, authenticate
    )
    try:
        yield principal
    finally:
        if slot is not None:
            state.stream_registry.release(slot)


def _admit(
    limits: RateLimits,
    registry: StreamRegistry,
    settings: Settings,
    authenticate: Callable[[], Principal],
) -> tuple[Principal, StreamSlot | None]:
    principal = authenticate()
    if limits.enabled:
        limits.hit(Limit.STREAM_OPENS, principal.org_id, principal.user_id)
    cap = settings.max_streams_per_user if limits.enabled else None
    slot = registry.admit(
        org_id=principal.org_id, user_id=principal.user_id, cap=cap, person=present_as(principal)
    )
    if slot is None:
        RATE_LIMITED.labels(Limit.CONCURRENT_STREAMS.value).inc()
        raise refusal(
            Limit.CONCURRENT_STREAMS,
            # No slot frees by expiry sooner than a refresh; a closing stream may free one sooner.
            math.ceil(settings.stream_slot_refresh_seconds),
            f"Too many open event streams: the limit is {cap} per user.",
        )
    if not slot.checked and limits.enabled:
        RATE_LIMIT_UNAVAILABLE.labels(Limit.CONCURRENT_STREAMS.value).inc()
    return principal, slot
