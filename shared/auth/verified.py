"""Bearer tokens this process verified recently, so a client's next requests
with the same token skip the signature check and the claim checks.

A JWT cannot be revoked here: what verifying it again would say changes only
with time (its ``exp``) and with the keys it is checked against. So an entry is
used for at most ``ttl_seconds`` (30 s), never once the token's ``exp`` has
passed (verifying again then still applies the leeway), and never after the
identity provider's key set changed since it was verified (a key the provider
dropped stops its tokens at once, as without the memory). API keys are not
kept here: their own cache (``shared.api_keys.verifier``) keeps a revoked key
at most ``ESCALATIONS_API_KEY_CACHE_SECONDS``. Refused tokens are never kept.

Bounded: the least recently used entry goes first. Thread-safe.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from shared.auth.tokens import Principal

#: Tokens kept per process (a few hundred bytes each).
MAX_TOKENS = 4096
#: How long a verified token is answered from memory.
TTL_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Kept:
    principal: Principal
    until: float  # monotonic
    keys: Hashable  # what the token was verified against (the provider's key set)


class VerifiedTokens:
    def __init__(
        self,
        *,
        max_tokens: int = MAX_TOKENS,
        ttl_seconds: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_tokens = max_tokens
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str, keys: Hashable) -> Principal | None:
        """The principal ``token`` was verified as, if that is still good: within
        the TTL, before its ``exp``, against the same ``keys``."""
        kept = self._kept.get(token)
        if kept is None:
            return None
        expires_at = kept.principal.expires_at
        if (
            kept.until <= self._clock()
            or kept.keys != keys
            or (expires_at is not None and expires_at <= time.time())
        ):
            with self._lock:
                if self._kept.get(token) is kept:
                    del self._kept[token]
            return None
        with self._lock:
            if token in self._kept:
                self._kept.move_to_end(token)
        return kept.principal

    def keep(self, token: str, principal: Principal, keys: Hashable) -> None:
        """Remember ``principal`` as what ``token`` was just verified as, against ``keys``
        (read before verifying, so a change during the check is not missed)."""
        kept = _Kept(principal, self._clock() + self._ttl_seconds, keys)
        with self._lock:
            self._kept[token] = kept
            self._kept.move_to_end(token)
            while len(self._kept) > self._max_tokens:
                self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)
