"""JWT identities: HS256 only, ``exp`` required, roles from a closed set.

Verification follows the settings: the signing secret and any previous secrets
(rotation), an optional issuer and audience, a small clock leeway, and a
maximum lifetime (``exp`` must be a JSON number no further than that ahead).
"""

import math
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from shared.core.errors import NotAuthenticated
from shared.core.models import Role
from shared.core.settings import STREAM_AUDIENCE, Settings

ALGORITHM = "HS256"
#: The ids API keys act under (``apikey:<id>``); no person's id may start with it.
API_KEY_PRINCIPAL_PREFIX = "apikey:"
# STREAM_AUDIENCE (from settings) is the ``aud`` of stream-cookie tokens. Bearer
# tokens carry no audience, or the configured ``ESCALATIONS_JWT_AUDIENCE`` (which
# may not be that one), so neither kind is accepted where the other is expected.
REQUIRED_CLAIMS = ["exp", "sub", "name", "role", "org"]
MAX_CLAIM_LENGTH = {"sub": 128, "name": 256, "role": 16, "org": 128}  # the columns' sizes


@dataclass(frozen=True)
class Principal:
    """The caller, as the token says. ``expires_at`` is the token's ``exp`` (Unix
    seconds); ``session_id`` is the ``jti`` of a stream-cookie token, or an API
    key's ``apikey:<id>`` (revoking either ends its open streams), else None."""

    user_id: str
    name: str
    role: Role
    org_id: str
    expires_at: float | None = None
    session_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    @property
    def is_api_key(self) -> bool:
        return self.user_id.startswith(API_KEY_PRINCIPAL_PREFIX)


def issue_token(
    *,
    secret: str,
    sub: str,
    name: str,
    role: Role,
    org: str,
    ttl: timedelta,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    now = int(time.time())
    return _sign(
        secret,
        {"sub": sub, "name": name, "role": role.value, "org": org, "iat": now,
         "exp": now + int(ttl.total_seconds()), "aud": audience, "iss": issuer},
    )  # fmt: skip


def issue_bearer_token(
    settings: Settings, *, sub: str, name: str, role: Role, org: str, ttl: timedelta
) -> str:
    """A bearer token as this deployment verifies it: signed with the current
    secret, with the configured issuer and audience."""
    return issue_token(
        secret=settings.jwt_secret,
        sub=sub,
        name=name,
        role=role,
        org=org,
        ttl=ttl,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )


@dataclass(frozen=True)
class StreamToken:
    token: str
    session_id: str  # the ``jti``: what ``DELETE /events/session`` revokes
    expires_at: int  # the ``exp``, Unix seconds


def issue_stream_token(
    principal: Principal, *, settings: Settings, max_ttl: timedelta
) -> StreamToken:
    """A token for the SSE stream cookie: same identity, stream audience only,
    a fresh ``jti``, expiring after ``max_ttl`` or with the token it was made
    from, whichever comes first. Raises :class:`NotAuthenticated` when that
    token has already expired (it may still be accepted within the leeway)."""
    now = int(time.time())
    expires_at = now + int(max_ttl.total_seconds())
    if principal.expires_at is not None:
        expires_at = min(expires_at, math.floor(principal.expires_at))
    if expires_at <= now:
        raise NotAuthenticated("Token expired.")
    session_id = uuid.uuid4().hex
    token = _sign(
        settings.jwt_secret,
        {"sub": principal.user_id, "name": principal.name, "role": principal.role.value,
         "org": principal.org_id, "iat": now, "exp": expires_at, "aud": STREAM_AUDIENCE,
         "iss": settings.jwt_issuer, "jti": session_id},
    )  # fmt: skip
    return StreamToken(token=token, session_id=session_id, expires_at=expires_at)


def _sign(secret: str, claims: dict[str, Any]) -> str:
    """HS256 over ``claims``, leaving out those that are None."""
    present = {key: value for key, value in claims.items() if value is not None}
    return jwt.encode(present, secret, algorithm=ALGORITHM)


def decode_token(token: str, *, settings: Settings, audience: str | None = None) -> Principal:
    """Raises :class:`NotAuthenticated` for anything but a valid, unexpired HS256
    token signed with an accepted secret, with every required claim, a known
    role, the expected issuer and audience, and a lifetime within the maximum.

    ``audience`` None means a bearer token (``settings.jwt_audience``, if set);
    pass :data:`STREAM_AUDIENCE` for the stream cookie."""
    expected_audience = audience if audience is not None else settings.jwt_audience
    claims = _verified_claims(token, settings, expected_audience)
    check_lifetime(claims, settings)
    return _principal_from(claims, stream=expected_audience == STREAM_AUDIENCE)


def _verified_claims(token: str, settings: Settings, audience: str | None) -> dict[str, Any]:
    required = [*REQUIRED_CLAIMS]
    if settings.jwt_issuer:
        required.append("iss")
    if audience:
        required.append("aud")
    for secret in (settings.jwt_secret, *settings.jwt_previous_secrets):
        try:
            return jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=settings.jwt_issuer,
                leeway=settings.jwt_leeway_seconds,
                options={"require": required},
            )
        except jwt.InvalidSignatureError:
            continue  # perhaps signed with another accepted secret
        except jwt.ExpiredSignatureError as exc:
            raise NotAuthenticated("Token expired.") from exc
        except jwt.InvalidTokenError as exc:
            raise NotAuthenticated("Invalid token.") from exc
    raise NotAuthenticated("Invalid token.")


def check_lifetime(claims: dict[str, Any], settings: Settings) -> None:
    """``exp`` (and ``iat``/``nbf`` when present) must be finite JSON numbers, and
    ``exp`` at most the maximum lifetime after now and after ``iat``. PyJWT alone
    takes ``"exp": "9999999999"`` and ``1e308`` (it only calls ``int()`` on them)."""
    for key in ("exp", "iat", "nbf"):
        if key in claims and not _is_number(claims[key]):
            raise NotAuthenticated(f"Token claim {key!r} must be a number.")
    limit = settings.jwt_max_lifetime_seconds
    exp, iat = claims["exp"], claims.get("iat")
    too_far_ahead = exp - time.time() > limit + settings.jwt_leeway_seconds
    if too_far_ahead or (iat is not None and exp - iat > limit):
        raise NotAuthenticated(f"Token lifetime exceeds the maximum of {limit} seconds.")


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def _principal_from(claims: dict[str, Any], *, stream: bool) -> Principal:
    fields = {key: checked_claim(key, claims.get(key)) for key in ("sub", "name", "role", "org")}
    try:
        role = Role(fields["role"])
    except ValueError as exc:
        raise NotAuthenticated(f"Unknown role {fields['role']!r}.") from exc
    session_id = claims.get("jti") if stream else None
    if stream and not (isinstance(session_id, str) and 0 < len(session_id) <= 64):
        raise NotAuthenticated("Invalid token.")  # every stream token names its session
    return Principal(
        user_id=fields["sub"],
        name=fields["name"],
        role=role,
        org_id=fields["org"],
        expires_at=float(claims["exp"]),
        session_id=session_id,
    )


def checked_claim(key: str, value: object) -> str:
    """``value`` of claim ``key`` when it is a string that fits its column; else
    raises ``NotAuthenticated``."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_CLAIM_LENGTH[key]
        or "\x00" in value  # PostgreSQL text cannot hold NUL
    ):
        raise NotAuthenticated(
            f"Token claim {key!r} must be a string of 1 to {MAX_CLAIM_LENGTH[key]} characters."
        )
    return value
