"""Tokens from the OIDC identity provider (``ESCALATIONS_OIDC_*``): verified
with the provider's published keys, and their claims mapped to a principal.

Only asymmetric algorithms are accepted: a token under the provider's issuer
signed ``none`` or HS* (perhaps with the provider's *public* key as the HMAC
secret) is refused before any key is looked at. ``iss`` must be the issuer
exactly, ``aud`` must hold the configured audience, and ``exp``, the leeway
and the maximum lifetime are checked as for the service's own tokens.
"""

import base64
import json
from typing import Any

import jwt

from shared.auth.oidc_keys import ProviderKeys
from shared.auth.tokens import API_KEY_PRINCIPAL_PREFIX, Principal, check_lifetime, checked_claim
from shared.core.errors import Forbidden, NotAuthenticated
from shared.core.models import Role
from shared.core.settings import Settings

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: Lowest first: the highest mapped role wins.
ROLE_RANK = (Role.engineer, Role.senior, Role.admin)
NAME_CLAIMS = ("name", "preferred_username", "email")


class IdentityProvider:
    """Verifies the provider's tokens. One per process (it holds the key cache)."""

    def __init__(self, settings: Settings, keys: ProviderKeys | None = None) -> None:
        assert settings.oidc_issuer, "the identity provider needs ESCALATIONS_OIDC_ISSUER"
        self.settings = settings
        self.issuer = settings.oidc_issuer
        self.keys = keys or ProviderKeys(
            issuer=settings.oidc_issuer,
            refetch_seconds=settings.oidc_jwks_refetch_seconds,
            max_age_seconds=settings.oidc_jwks_max_age_seconds,
            timeout_seconds=settings.oidc_http_timeout_seconds,
        )

    def close(self) -> None:
        self.keys.close()

    def claims(
        self, token: str, *, audience: str | None = None, nonce: str | None = None
    ) -> dict[str, Any]:
        """The verified claims of a token the provider signed. Raises
        ``NotAuthenticated`` for any bad token, ``ServiceUnavailable``
        (``identity_provider_unavailable``) when no key can be had. ``nonce``,
        when given, must equal the token's (an ID token from a sign-in)."""
        header = _header(token)
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise NotAuthenticated(
                "Invalid token: the provider's tokens are signed asymmetrically."
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise NotAuthenticated("Invalid token.")
        try:
            key = self.keys.key(kid, algorithm)
        except jwt.PyJWTError as exc:  # InvalidKeyError: the key does not fit the alg
            raise NotAuthenticated("Invalid token.") from exc
        if key is None:
            raise NotAuthenticated("Invalid token: signed with a key the provider does not have.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=audience or self.settings.oidc_expected_audience,
                issuer=self.issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise NotAuthenticated("Token expired.") from exc
        except jwt.PyJWTError as exc:
            raise NotAuthenticated("Invalid token.") from exc
        check_lifetime(claims, self.settings)
        if nonce is not None and claims.get("nonce") != nonce:
            raise NotAuthenticated("Invalid token: the nonce does not match the sign-in.")
        return claims

    def principal(self, token: str) -> Principal:
        """The caller a bearer token from the provider names. Raises as :meth:`claims`,
        and ``Forbidden`` (``no_role``) when its roles map to none and there is no default."""
        return principal_from_claims(self.claims(token), self.settings)


def is_provider_token(token: str, issuer: str) -> bool:
    """Whether ``token`` claims (unverified) to come from ``issuer``: its payload
    read without PyJWT's checks, which cost more than this on every HS256 request."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:  # binascii.Error and JSONDecodeError (and bad UTF-8) are ValueErrors
        return False
    return isinstance(payload, dict) and payload.get("iss") == issuer


def principal_from_claims(claims: dict[str, Any], settings: Settings) -> Principal:
    """``sub``; the name from ``name``, else ``preferred_username``, else ``email``
    (else ``sub``); the role from ``OIDC_ROLE_CLAIM`` through ``OIDC_ROLE_MAP``;
    the org from ``OIDC_ORG_CLAIM`` or ``OIDC_ORG``."""
    if str(claims.get("sub", "")).startswith(API_KEY_PRINCIPAL_PREFIX):
        raise NotAuthenticated("Invalid token: that subject is reserved for API keys.")
    name = next(
        (claims[key] for key in NAME_CLAIMS if _is_text(claims.get(key))), claims.get("sub")
    )
    return Principal(
        user_id=checked_claim("sub", claims.get("sub")),
        name=checked_claim("name", name),
        role=role_from_claims(claims, settings),
        org_id=checked_claim("org", _org(claims, settings)),
        expires_at=float(claims["exp"]),
    )


def role_from_claims(claims: dict[str, Any], settings: Settings) -> Role:
    """The highest role any of the token's groups maps to (a role's own name maps
    to itself), else ``OIDC_DEFAULT_ROLE``. Raises ``Forbidden`` (``no_role``)."""
    mapped = {**{role.value: role for role in Role}, **settings.oidc_role_map}
    found = [
        mapped[group] for group in _groups(claims, settings.oidc_role_claim) if group in mapped
    ]
    if found:
        return max(found, key=ROLE_RANK.index)
    if settings.oidc_default_role is None:
        raise Forbidden(
            "Signed in, but none of your groups gives a role here: ask an admin to map one.",
            code="no_role",
        )
    return settings.oidc_default_role


def _groups(claims: dict[str, Any], path: str) -> list[str]:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _org(claims: dict[str, Any], settings: Settings) -> Any:
    if settings.oidc_org is not None:
        return settings.oidc_org
    assert settings.oidc_org_claim is not None  # Settings requires one of the two
    return claims.get(settings.oidc_org_claim)


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise NotAuthenticated("Invalid token.") from exc


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
