"""JWT identities: HS256 only, ``exp`` required, roles from a closed set."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from shared.errors import NotAuthenticated
from shared.models import Role
from shared.timeutil import utcnow

ALGORITHM = "HS256"
#: ``aud`` of stream-cookie tokens; bearer tokens carry no audience, so neither
#: kind is accepted where the other is expected.
STREAM_AUDIENCE = "escalations-stream"
REQUIRED_CLAIMS = ["exp", "sub", "name", "role", "org"]
MAX_CLAIM_LENGTH = {"sub": 128, "name": 256, "role": 16, "org": 128}  # the columns' sizes


@dataclass(frozen=True)
class Principal:
    """The caller, as the token says."""

    user_id: str
    name: str
    role: Role
    org_id: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


def issue_token(
    *,
    secret: str,
    sub: str,
    name: str,
    role: Role,
    org: str,
    ttl: timedelta,
    audience: str | None = None,
) -> str:
    claims: dict[str, Any] = {
        "sub": sub,
        "name": name,
        "role": role.value,
        "org": org,
        "exp": utcnow() + ttl,
    }
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def issue_stream_token(principal: Principal, *, secret: str, ttl: timedelta) -> str:
    """A token for the SSE stream cookie: same identity, stream audience only."""
    return issue_token(
        secret=secret,
        sub=principal.user_id,
        name=principal.name,
        role=principal.role,
        org=principal.org_id,
        ttl=ttl,
        audience=STREAM_AUDIENCE,
    )


def decode_token(token: str, *, secret: str, audience: str | None = None) -> Principal:
    """Raises :class:`NotAuthenticated` for anything but a valid, unexpired HS256
    token with every required claim, a known role and the expected audience."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("Token expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise NotAuthenticated("Invalid token.") from exc
    return _principal_from(claims)


def _principal_from(claims: dict[str, Any]) -> Principal:
    fields = {key: _claim(claims, key) for key in ("sub", "name", "role", "org")}
    try:
        role = Role(fields["role"])
    except ValueError as exc:
        raise NotAuthenticated(f"Unknown role {fields['role']!r}.") from exc
    return Principal(user_id=fields["sub"], name=fields["name"], role=role, org_id=fields["org"])


def _claim(claims: dict[str, Any], key: str) -> str:
    value = claims.get(key)
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_CLAIM_LENGTH[key]
        or "\x00" in value  # PostgreSQL text cannot hold NUL
    ):
        raise NotAuthenticated(
            f"Token claim {key!r} must be a string of 1 to {MAX_CLAIM_LENGTH[key]} characters."
        )
    return value
