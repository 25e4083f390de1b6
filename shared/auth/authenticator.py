"""Every kind of bearer credential, to the principal it names.

* ``esk_…``: an API key (``shared.api_keys.verifier``);
* a JWT whose (unverified) ``iss`` is ``ESCALATIONS_OIDC_ISSUER``: the identity
  provider's token, verified with its keys (``shared.auth.oidc``); such a token is
  never tried as an HS256 token, so signing one with the provider's public key
  as an HMAC secret gets nowhere;
* anything else: the service's own HS256 token (``shared.auth.tokens.decode_token``).

One :class:`Authenticator` per process: it holds the provider's key cache, the
API keys' cache and the JWTs it verified lately (``shared.auth.verified``: a
token seen again within 30 s, before its ``exp``, is not verified again).
Blocking (database, the provider's keys when they must be fetched): call from a
worker thread.
"""

from sqlalchemy import Engine

from shared.api_keys.models import KEY_PREFIX
from shared.api_keys.verifier import ApiKeyVerifier
from shared.auth.oidc import IdentityProvider, is_provider_token
from shared.auth.tokens import Principal, decode_token
from shared.auth.verified import VerifiedTokens
from shared.core.settings import Settings


class Authenticator:
    def __init__(
        self,
        *,
        settings: Settings,
        api_keys: ApiKeyVerifier,
        provider: IdentityProvider | None = None,
    ) -> None:
        self.settings = settings
        self.api_keys = api_keys
        self.provider = provider
        self.verified = VerifiedTokens()

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> "Authenticator":
        provider = IdentityProvider(settings) if settings.oidc_issuer else None
        verifier = ApiKeyVerifier(engine, cache_seconds=settings.api_key_cache_seconds)
        return cls(settings=settings, api_keys=verifier, provider=provider)

    def close(self) -> None:
        if self.provider is not None:
            self.provider.close()

    def principal(self, token: str) -> Principal:
        """Raises ``NotAuthenticated`` for any bad credential; ``Forbidden``
        (``no_role``) for a provider's user with no role here;
        ``ServiceUnavailable`` when the provider's keys cannot be had."""
        if token.startswith(KEY_PREFIX):
            return self.api_keys.principal(token)
        keys = self.provider.keys.generation if self.provider is not None else None
        principal = self.verified.get(token, keys)
        if principal is None:
            principal = self._verify(token)
            self.verified.keep(token, principal, keys)
        return principal

    def _verify(self, token: str) -> Principal:
        if self.provider is not None and is_provider_token(token, self.provider.issuer):
            return self.provider.principal(token)
        return decode_token(token, settings=self.settings)
