"""Recording and reading the audit log.

``record`` adds the row to the caller's session, so it commits (or rolls back)
with the change it describes: no change without its row, no row without its
change. Secrets never reach a row: any key that names one (``secret``, ``key``,
``token``, …) is dropped from ``before`` and ``after`` at any depth, and a
rotation is recorded as its own kind with no value.
"""

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from shared.audit.models import AuditEntry, AuditPage, AuditPublic
from shared.auth.tokens import Principal
from shared.core.errors import InvalidInput
from shared.core.timeutil import utcnow

#: Keys whose values are never recorded, wherever they appear.
SECRET_KEYS = frozenset(
    {"secret", "key", "token", "bot_token", "client_secret", "signing_secret", "password"}
)
MAX_PAGE = 200


@dataclass(frozen=True)
class Actor:
    id: str
    name: str


#: The actor of the workers' own changes (the retention sweep).
SYSTEM = Actor(id="system", name="System")


def actor_of(principal: Principal) -> Actor:
    return Actor(id=principal.user_id, name=principal.name)


def record(
    session: Session,
    *,
    org_id: str,
    actor: Actor | Principal,
    kind: str,
    target_id: str | None = None,
    before: BaseModel | dict[str, Any] | None = None,
    after: BaseModel | dict[str, Any] | None = None,
) -> None:
    """Add one audit row to ``session`` (committed with the caller's change)."""
    who = actor_of(actor) if isinstance(actor, Principal) else actor
    session.add(
        AuditEntry(
            org_id=org_id,
            at=utcnow(),
            actor_id=who.id,
            actor_name=who.name,
            kind=kind,
            target_id=target_id,
            before=_recordable(before),
            after=_recordable(after),
        )
    )


def _recordable(value: BaseModel | dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    plain = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return _without_secrets(plain)


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if k not in SECRET_KEYS}
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


def list_audit(
    *,
    session: Session,
    org_id: str,
    kind: str | None = None,
    actor_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> AuditPage:
    """The org's rows, newest first, ``limit`` at a time; ``next_cursor`` continues.
    Raises ``InvalidInput`` (``invalid_cursor``) for a cursor this did not give."""
    query = select(AuditEntry).where(AuditEntry.org_id == org_id)
    if kind is not None:
        query = query.where(AuditEntry.kind == kind)
    if actor_id is not None:
        query = query.where(AuditEntry.actor_id == actor_id)
    if cursor is not None:
        query = query.where(col(AuditEntry.id) < _decode_cursor(cursor))
    rows = session.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit + 1)).all()
    page = rows[:limit]
    more = len(rows) > limit
    return AuditPage(
        items=[AuditPublic.model_validate(row, from_attributes=True) for row in page],
        next_cursor=_encode_cursor(page[-1].id) if more and page else None,
    )


def _encode_cursor(row_id: int | None) -> str:
    return base64.urlsafe_b64encode(f"audit:{row_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "audit" or not number.isdigit():
            raise ValueError(cursor)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput("The cursor is not one this list gave.", code="invalid_cursor") from exc
