"""``Authorization: Bearer esk_…``: the key's principal, without a database
round trip on most requests.

Each process keeps the keys it verified for ``cache_seconds`` (at most 1 s):
within that a request is answered from memory; after it, the next request
with that key reads its row again (one indexed lookup by digest). So a key
revoked or expired is refused on every replica within ``cache_seconds`` of the
revoking commit, without a message that could be lost (a pub/sub subscriber
that reconnects misses what was published meanwhile). Expiry is also checked
on every request against the cached ``expires_at``. Unknown keys are not
cached (the failed-authentication limit bounds how often one address tries).

``last_used_at`` is written when a row is read and its value is older than
``LAST_USED_EVERY_SECONDS``: at most about once a minute per key and replica,
never per request. Blocking (database): call from a worker thread.
"""

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from shared.api_keys.models import ApiKey
from shared.api_keys.service import digest_of, principal_id
from shared.auth.tokens import Principal
from shared.core.errors import NotAuthenticated
from shared.core.models import Role
from shared.core.timeutil import as_utc, utcnow

LAST_USED_EVERY_SECONDS = 60.0
#: Past this many cached keys the cache starts over (a bound, not an eviction policy).
MAX_CACHED_KEYS = 10_000


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    expires_at: float | None  # Unix seconds
    checked_at: float  # monotonic


class ApiKeyVerifier:
    def __init__(self, engine: Engine, *, cache_seconds: float) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._cache: dict[str, _Verified] = {}
        self._lock = threading.Lock()

    def principal(self, key: str) -> Principal:
        """Raises ``NotAuthenticated`` for a key unknown, revoked or expired."""
        digest = digest_of(key)
        verified = self._cache.get(digest)
        if verified is None or time.monotonic() - verified.checked_at >= self._cache_seconds:
            verified = self._load(digest)
        if verified.expires_at is not None and verified.expires_at <= time.time():
            raise NotAuthenticated("API key expired.")
        return verified.principal

    def _load(self, digest: str) -> _Verified:
        checked_at = time.monotonic()
        with Session(self._engine) as session:
            row = session.exec(
                select(ApiKey).where(ApiKey.digest == digest, col(ApiKey.revoked_at).is_(None))
            ).first()
            if row is None:
                self._forget(digest)
                raise NotAuthenticated("Unknown or revoked API key.")
            self._note_use(session, row)
            verified = _Verified(
                principal=Principal(
                    user_id=principal_id(row.id),
                    name=row.name,
                    role=Role(row.role),
                    org_id=row.org_id,
                    expires_at=as_utc(row.expires_at).timestamp() if row.expires_at else None,
                    session_id=principal_id(row.id),
                ),
                expires_at=as_utc(row.expires_at).timestamp() if row.expires_at else None,
                checked_at=checked_at,
            )
        with self._lock:
            if len(self._cache) >= MAX_CACHED_KEYS:
                self._cache.clear()
            self._cache[digest] = verified
        return verified

    def _forget(self, digest: str) -> None:
        with self._lock:
            self._cache.pop(digest, None)

    @staticmethod
    def _note_use(session: Session, row: ApiKey) -> None:
        """Sets ``last_used_at`` unless another request (on any replica) did within
        ``LAST_USED_EVERY_SECONDS``: one conditional UPDATE, no read-modify-write."""
        now = utcnow()
        before = now - timedelta(seconds=LAST_USED_EVERY_SECONDS)
        if row.last_used_at is not None and as_utc(row.last_used_at) > before:
            return
        session.execute(
            update(ApiKey)
            .where(
                col(ApiKey.id) == row.id,
                or_(col(ApiKey.last_used_at).is_(None), col(ApiKey.last_used_at) < before),
            )
            .values(last_used_at=now)
        )
        session.commit()
