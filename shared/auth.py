"""JWT identities: HS256 only, ``exp`` required, roles from a closed set."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from shared.errors import NotAuthenticated
from shared.models import Role
from shared.timeutil import utcnow

ALGORITHM = "HS256"
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
    *, secret: str, sub: str, name: str, role: Role, org: str, ttl: timedelta
) -> str:
    claims = {"sub": sub, "name": name, "role": role.value, "org": org, "exp": utcnow() + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, *, secret: str) -> Principal:
    """Raises :class:`NotAuthenticated` for anything but a valid, unexpired HS256
    token with every required claim and a known role."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": REQUIRED_CLAIMS}
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("Token expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise NotAuthenticated("Invalid token.") from exc
    return _principal_from(claims)


def _principal_from(claims: dict[str, Any]) -> Principal:
    fields = {key: claims.get(key) for key in ("sub", "name", "role", "org")}
    for key, value in fields.items():
        if (
            not isinstance(value, str)
            or not 0 < len(value) <= MAX_CLAIM_LENGTH[key]
            or "\x00" in value  # PostgreSQL text cannot hold NUL
        ):
            raise NotAuthenticated(
                f"Token claim {key!r} must be a string of 1 to {MAX_CLAIM_LENGTH[key]} characters."
            )
    try:
        role = Role(fields["role"])
    except ValueError as exc:
        raise NotAuthenticated(f"Unknown role {fields['role']!r}.") from exc
    return Principal(
        user_id=fields["sub"], name=fields["name"], role=role, org_id=fields["org"]
    )
