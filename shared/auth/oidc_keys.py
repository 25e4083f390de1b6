"""The identity provider's discovery document and signing keys, cached per process.

Nothing is fetched per request once the keys are here: a token whose ``kid`` is
in the cached key set is verified without a round trip. The provider is asked
again only when

* a token names a ``kid`` the cache does not hold (the provider rotated its
  keys): at most once per ``refetch_seconds``, so a flood of made-up kids cannot
  hammer the provider (nor this process's threads);
* the cached set is older than ``max_age_seconds`` (a key the provider dropped
  stops being accepted); the request that notices it refreshes, the others go
  on with the cached set.

When the provider does not answer, the cached keys keep verifying; with none
cached, :class:`ServiceUnavailable` (``identity_provider_unavailable``). After a
failed fetch the provider is not asked again for ``refetch_seconds``.
Blocking (HTTP): call from a worker thread, never on the event loop.
"""

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from shared.core.errors import ServiceUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Discovery:
    """What this service uses of ``{issuer}/.well-known/openid-configuration``."""

    issuer: str
    jwks_uri: str
    authorization_endpoint: str | None
    token_endpoint: str | None
    end_session_endpoint: str | None


def unavailable(detail: str) -> ServiceUnavailable:
    return ServiceUnavailable(detail, code="identity_provider_unavailable")


class ProviderKeys:
    """Discovery and the JSON Web Key Set of one issuer. Thread-safe."""

    def __init__(
        self,
        *,
        issuer: str,
        refetch_seconds: float,
        max_age_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.issuer = issuer
        self._refetch_seconds = refetch_seconds
        self._max_age_seconds = max_age_seconds
        self._http = httpx.Client(timeout=timeout_seconds, follow_redirects=False)
        self._lock = threading.Lock()
        self._discovery: Discovery | None = None
        self._keys: dict[str | None, dict[str, Any]] = {}  # kid → JWK (public members)
        #: (kid, alg) → the loaded key: loading an RSA key costs ~0.4 ms, so once per set.
        self._loaded: dict[tuple[str | None, str], jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # monotonic time of the last successful fetch
        self._last_failure = -float("inf")  # … of the last fetch that failed
        self._last_kid_refetch = -float("inf")  # … of the last fetch for an unknown kid
        #: Counts the key sets fetched: what a token was verified against
        #: (``shared.auth.verified`` forgets tokens verified against an older set).
        self.generation = 0

    def close(self) -> None:
        self._http.close()

    def discovery(self) -> Discovery:
        """The discovery document, fetched once. Raises ``ServiceUnavailable``."""
        found = self._discovery
        if found is None:
            with self._lock:
                found = self._discovery or self._discover()
        return found

    def jwk(self, kid: str | None) -> dict[str, Any] | None:
        """The provider's public key named ``kid`` (a token without ``kid``: the
        only key, if there is exactly one), or None when the provider does not
        have it. Raises ``ServiceUnavailable`` only when no keys could ever be had."""
        now = time.monotonic()
        stale = self._fetched_at is None or now - self._fetched_at > self._max_age_seconds
        if stale and self._lock.acquire(blocking=False):
            try:  # stale: this request refreshes, the others read the cached set meanwhile
                self._refresh_if_due(now, unknown_kid=False)
            finally:
                self._lock.release()
        found = self._lookup(kid)
        if found is None:
            with self._lock:  # the kid may have arrived while this thread waited
                found = self._lookup(kid)
                if found is None and self._refresh_if_due(time.monotonic(), unknown_kid=True):
                    found = self._lookup(kid)
        if self._fetched_at is None:
            raise unavailable("The identity provider's keys cannot be fetched; retry shortly.")
        return found

    def key(self, kid: str | None, algorithm: str) -> jwt.PyJWK | None:
        """:meth:`jwk` loaded as a key for ``algorithm`` (cached with the set).
        Raises ``jwt.PyJWTError`` when the key does not fit the algorithm."""
        jwk = self.jwk(kid)
        if jwk is None:
            return None
        loaded = self._loaded.get((kid, algorithm))
        if loaded is None:
            loaded = self._loaded[(kid, algorithm)] = public_key(jwk, algorithm)
        return loaded

    def _lookup(self, kid: str | None) -> dict[str, Any] | None:
        keys = self._keys
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        return keys.get(kid) if kid is not None else None

    def _refresh_if_due(self, now: float, *, unknown_kid: bool) -> bool:
        """Fetches the key set unless a fetch failed within ``refetch_seconds`` or,
        for an unknown kid, one was made for an unknown kid within it. True when
        a fetch succeeded. Call with the lock held."""
        if now - self._last_failure < self._refetch_seconds:
            return False
        if unknown_kid:
            if now - self._last_kid_refetch < self._refetch_seconds:
                return False
            self._last_kid_refetch = now
        try:
            discovery = self._discovery or self._discover()
            keys = self._fetch_keys(discovery.jwks_uri)
        except ServiceUnavailable as exc:
            self._last_failure = now
            log.warning("identity provider keys not refreshed: %s", exc.detail)
            return False
        self._keys, self._loaded, self._fetched_at = keys, {}, time.monotonic()
        self.generation += 1
        return True

    def _discover(self) -> Discovery:
        # The issuer is compared exactly (Auth0's ends with "/"), the URL built without it.
        document = self._get_json(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration")
        if document.get("issuer") != self.issuer:
            raise unavailable("The identity provider's discovery names another issuer.")
        if not isinstance(document.get("jwks_uri"), str):
            raise unavailable("The identity provider's discovery has no jwks_uri.")
        self._discovery = Discovery(
            issuer=document["issuer"],
            jwks_uri=document["jwks_uri"],
            authorization_endpoint=document.get("authorization_endpoint"),
            token_endpoint=document.get("token_endpoint"),
            end_session_endpoint=document.get("end_session_endpoint"),
        )
        return self._discovery

    def _fetch_keys(self, uri: str) -> dict[str | None, dict[str, Any]]:
        """The set's signing keys by ``kid``; private members and keys for
        encryption (``use: enc``) or of an unusable type are left out."""
        document = self._get_json(uri)
        keys: dict[str | None, dict[str, Any]] = {}
        for jwk in document.get("keys", []):
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            if jwk.get("kty") not in ("RSA", "EC", "OKP"):
                continue  # never "oct": a shared secret is not the provider's signature
            public = {name: value for name, value in jwk.items() if name not in PRIVATE_MEMBERS}
            keys[jwk.get("kid")] = public
        return keys

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._http.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise unavailable(
                f"The identity provider did not answer: {type(exc).__name__}."
            ) from exc
        if not isinstance(document, dict):
            raise unavailable("The identity provider answered with something else than an object.")
        return document


#: JWK members that hold private key material (RFC 7518 §6.2.2, §6.3.2; RFC 8037).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def public_key(jwk: dict[str, Any], algorithm: str) -> jwt.PyJWK:
    """``jwk`` as a key for ``algorithm``. Raises ``jwt.PyJWTError`` when the
    key's type does not fit the algorithm or the key names another ``alg``."""
    if jwk.get("alg") not in (None, algorithm):
        raise jwt.PyJWKError(f"the key is for {jwk['alg']}, the token says {algorithm}")
    return jwt.PyJWK(jwk, algorithm=algorithm)
