"""Abuse limits shared by every replica: request rates counted in Redis.

Each limit is a moving window from the ``limits`` package ("30/minute": at most
30 in any 60 seconds) over its Redis storage, on the process's own Redis
connection pool, so every replica counts against the same window. A refused
request raises :class:`RateLimited` with the whole seconds until the oldest
counted request leaves the window.

When Redis does not answer, a limit fails open: the request goes ahead, a
warning is logged (at most every ``WARN_EVERY_SECONDS``) and
``escalations_rate_limit_unavailable_total`` counts it. Creates stay safe
without Redis (the outbox relays their events later), and refusing every
request during a Redis outage would turn it into a full outage.

A :meth:`RateLimits.check` that finds a window empty is remembered in the
process for ``CLEAN_SECONDS``: the same check answers from memory meanwhile
(the failed-authentication check of every request costs no Redis round trip
for an address that never failed). Counting or hitting that window in this
process forgets it at once; counts by other replicas are seen within
``CLEAN_SECONDS`` (docs/decisions.md, "An address without failures is
remembered for 0.5 s").
"""

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from urllib.parse import quote

import limits
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis
from redis.exceptions import RedisError

from shared.core import keys
from shared.core.errors import NotAuthenticated, RateLimited
from shared.core.metrics import RATE_LIMIT_UNAVAILABLE, RATE_LIMITED
from shared.core.settings import Settings

log = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 10.0
#: How long an empty window found by ``check`` is remembered in the process.
CLEAN_SECONDS = 0.5
#: Empty windows remembered at most (past that the memory starts over).
MAX_CLEAN = 10_000


class Limit(StrEnum):
    """Every limit's name (the ``limit`` field of a 429 and the metrics label)."""

    CREATES = "creates"
    CLAIMS = "claims"
    STREAM_OPENS = "stream_opens"
    AUTH_FAILURES = "auth_failures"
    WEBHOOK_SENDS = "webhook_sends"
    CONCURRENT_STREAMS = "concurrent_streams"


DETAIL = {
    Limit.CREATES: "Too many handoffs created",
    Limit.CLAIMS: "Too many claims",
    Limit.STREAM_OPENS: "Too many event streams opened",
    Limit.AUTH_FAILURES: "Too many failed authentications from this address",
    Limit.WEBHOOK_SENDS: "Too many webhook tests and redeliveries for this organization",
}


def rates_from(settings: Settings) -> dict[Limit, limits.RateLimitItem]:
    """The configured rate of each windowed limit (Settings validated the strings)."""
    return {
        Limit.CREATES: limits.parse(settings.rate_limit_creates),
        Limit.CLAIMS: limits.parse(settings.rate_limit_claims),
        Limit.STREAM_OPENS: limits.parse(settings.rate_limit_stream_opens),
        Limit.AUTH_FAILURES: limits.parse(settings.rate_limit_auth_failures),
        Limit.WEBHOOK_SENDS: limits.parse(settings.rate_limit_webhook_sends),
    }


class RateLimits:
    """The windowed limits of one process. Blocking calls (one Redis round trip
    each): call them from a worker thread, never on the event loop. With
    ``enabled=False`` every method returns at once without touching Redis."""

    def __init__(
        self, redis: Redis, *, rates: dict[Limit, limits.RateLimitItem], enabled: bool = True
    ) -> None:
        self.enabled = enabled
        self._rates = rates
        storage = RedisStorage(
            "redis://", connection_pool=redis.connection_pool, key_prefix=keys.RATE_LIMIT_PREFIX
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._warn_lock = threading.Lock()
        self._warned_at = -math.inf
        #: (limit, *identifiers) → monotonic time until which its window is known empty.
        self._clean: dict[tuple[str, ...], float] = {}
        self._clean_lock = threading.Lock()
        #: Counts this process's counts in checked limits: a check that raced one
        #: remembers nothing.
        self._counts = 0
        self._checked: set[str] = set()  # the limits ``check`` was asked about

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> "RateLimits":
        return cls(redis, rates=rates_from(settings), enabled=settings.rate_limits_enabled)

    def hit(self, limit: Limit, *identifiers: str) -> None:
        """Counts one request; raises :class:`RateLimited` (counting nothing)
        when the window is already full."""
        self._forget_clean(limit, identifiers)
        self._admit(limit, identifiers, self._limiter.hit)

    def check(self, limit: Limit, *identifiers: str) -> None:
        """Raises :class:`RateLimited` when the window is full, counting nothing.
        A window found empty is not asked again for ``CLEAN_SECONDS`` unless this
        process counts in it meanwhile."""
        if not self.enabled:
            return
        key = (limit.value, *identifiers)
        self._checked.add(limit.value)
        clean_until = self._clean.get(key)
        if clean_until is not None and time.monotonic() < clean_until:
            return
        item, ids = self._rates[limit], _key_parts(limit, identifiers)
        asked_at, counts = time.monotonic(), self._counts
        try:
            stats = self._limiter.get_window_stats(item, *ids)
        except RedisError as exc:
            self._unavailable(limit, exc)
            return
        if stats.remaining >= item.amount:
            self._remember_clean(key, asked_at + CLEAN_SECONDS, counts)
        elif stats.remaining <= 0:
            raise self._refusal(limit, max(1, math.ceil(stats.reset_time - time.time())))

    def _remember_clean(self, key: tuple[str, ...], until: float, counts: int) -> None:
        with self._clean_lock:
            if counts != self._counts:
                return  # this process counted something while Redis answered
            if len(self._clean) >= MAX_CLEAN:
                self._clean.clear()
            self._clean[key] = until

    def _forget_clean(self, limit: Limit, identifiers: tuple[str, ...]) -> None:
        if limit.value not in self._checked:
            return  # a limit only ever hit (creates, claims) has nothing remembered
        with self._clean_lock:
            self._counts += 1
            self._clean.pop((limit.value, *identifiers), None)

    def _admit(
        self,
        limit: Limit,
        identifiers: tuple[str, ...],
        probe: Callable[..., bool],
    ) -> None:
        """``probe`` (the limiter's hit or test) says whether there is room."""
        if not self.enabled:
            return
        item, ids = self._rates[limit], _key_parts(limit, identifiers)
        try:
            if probe(item, *ids):
                return
            retry_after = self._retry_after(item, ids)
        except RedisError as exc:
            self._unavailable(limit, exc)
            return
        raise self._refusal(limit, retry_after)

    def count(self, limit: Limit, *identifiers: str) -> None:
        """Counts one occurrence (a failed authentication) without refusing anything."""
        if not self.enabled:
            return
        self._forget_clean(limit, identifiers)
        try:
            self._limiter.hit(self._rates[limit], *_key_parts(limit, identifiers))
        except RedisError as exc:
            self._unavailable(limit, exc)

    @contextmanager
    def auth_failures_counted(self, address: str) -> Iterator[None]:
        """Wraps a token check: a :class:`NotAuthenticated` raised inside counts
        one failed authentication for ``address`` (and is re-raised)."""
        try:
            yield
        except NotAuthenticated:
            self.count(Limit.AUTH_FAILURES, address)
            raise

    def _retry_after(self, item: limits.RateLimitItem, ids: list[str]) -> int:
        """Seconds until the oldest request in the window leaves it."""
        stats = self._limiter.get_window_stats(item, *ids)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _refusal(self, limit: Limit, retry_after: int) -> RateLimited:
        RATE_LIMITED.labels(limit.value).inc()
        rate = self._rates[limit]
        return refusal(limit, retry_after, f"{DETAIL[limit]}: the limit is {rate}.")

    def _unavailable(self, limit: Limit, exc: RedisError) -> None:
        RATE_LIMIT_UNAVAILABLE.labels(limit.value).inc()
        with self._warn_lock:
            now = time.monotonic()
            if now - self._warned_at < WARN_EVERY_SECONDS:
                return
            self._warned_at = now
        log.warning("rate limits: Redis unavailable (%s); letting requests through", exc)


def refusal(limit: Limit, retry_after: int, detail: str) -> RateLimited:
    return RateLimited(
        f"{detail} Retry in {max(1, retry_after)} s.", limit=limit.value, retry_after=retry_after
    )


def _key_parts(limit: Limit, identifiers: tuple[str, ...]) -> list[str]:
    """``limits`` joins the parts with "/": quote each so ("a/b", "c") and
    ("a", "b/c") stay different keys."""
    return [limit.value, *(quote(part, safe="") for part in identifiers)]
