"""An org's API keys: create (the key is returned once), list, load, revoke.
Functions take keyword arguments only and commit their own transaction;
another org's key, and a revoked one, is ``NotFound`` (``api_key_not_found``)."""

import hashlib
import secrets
import time
import uuid

from redis import Redis
from sqlmodel import Session, col, select

from shared.api_keys.models import (
    KEY_PREFIX,
    ApiKey,
    ApiKeyCreate,
    ApiKeyList,
    ApiKeyPublic,
    ApiKeyRole,
    ApiKeyWithSecret,
)
from shared.audit import service as audit
from shared.auth.tokens import API_KEY_PRINCIPAL_PREFIX, Principal
from shared.core.db import load_in_org
from shared.core.errors import NotFound
from shared.core.timeutil import as_utc, utcnow
from shared.events import stream_sessions

#: Random bytes in a key (256 bits): too many to guess, so a fast digest is enough.
KEY_BYTES = 32
#: Characters of the key kept in the clear (``esk_`` and 8 of the random part).
SHOWN_CHARACTERS = len(KEY_PREFIX) + 8
#: How long a revoked key's marker stays in Redis, for a stream that missed the
#: revocation's message (the hub re-checks its sessions' markers).
REVOKED_STREAMS_SECONDS = 7 * 86_400


def principal_id(key_id: str) -> str:
    """The id an API key acts under (``created_by_id`` of its handoffs), also the
    stream session its open streams belong to (revoking the key ends them)."""
    return f"{API_KEY_PRINCIPAL_PREFIX}{key_id}"


def digest_of(key: str) -> str:
    """SHA-256 of the whole key, hex. Not a password hash (bcrypt, scrypt): those
    slow down guessing a low-entropy secret; a key's 256 random bits cannot be
    guessed, and a fast digest lets a request find its key by an indexed lookup."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def create_api_key(*, session: Session, actor: Principal, body: ApiKeyCreate) -> ApiKeyWithSecret:
    """A key of ``actor``'s org, made by ``actor`` (audited as ``api_key.created``,
    without the key)."""
    key = new_key()
    row = ApiKey(
        id=str(uuid.uuid4()),
        org_id=actor.org_id,
        name=body.name,
        role=body.role.value,
        prefix=key[:SHOWN_CHARACTERS],
        digest=digest_of(key),
        created_by_id=actor.user_id,
        created_at=utcnow(),
        expires_at=body.expires_at,
    )
    session.add(row)
    shown = public(row)
    audit.record(session, org_id=actor.org_id, actor=actor, kind="api_key.created",
                 target_id=row.id, after=shown)  # fmt: skip
    session.commit()
    return ApiKeyWithSecret(**shown.model_dump(), key=key)


def list_api_keys(*, session: Session, org_id: str) -> ApiKeyList:
    """The org's keys not revoked (expired ones too, until revoked), oldest first."""
    rows = session.exec(
        select(ApiKey)
        .where(ApiKey.org_id == org_id, col(ApiKey.revoked_at).is_(None))
        .order_by(col(ApiKey.created_at), col(ApiKey.id))
    ).all()
    return ApiKeyList(items=[public(row) for row in rows])


def load_api_key(*, session: Session, org_id: str, key_id: str) -> ApiKey:
    """The org's key not revoked, or ``NotFound`` (``api_key_not_found``)."""
    row = load_in_org(session, ApiKey, org_id=org_id, row_id=key_id)
    if row is None or row.revoked_at is not None:
        raise NotFound(f"API key {key_id} not found.", code="api_key_not_found")
    return row


def revoke_api_key(*, session: Session, redis: Redis, actor: Principal, api_key: ApiKey) -> None:
    """From now on the key is refused: by every replica within
    ``ESCALATIONS_API_KEY_CACHE_SECONDS`` (``shared.api_keys.verifier``), and its
    open event streams end on every replica (``shared.events.stream_sessions``). Redis
    first: when it does not answer, ``ServiceUnavailable`` and nothing changed."""
    stream_sessions.revoke(
        redis,
        session_id=principal_id(api_key.id),
        expires_at=time.time() + REVOKED_STREAMS_SECONDS,
        leeway_seconds=0,
    )
    api_key.revoked_at = utcnow()
    session.add(api_key)
    audit.record(session, org_id=api_key.org_id, actor=actor, kind="api_key.revoked",
                 target_id=api_key.id, before=public(api_key))  # fmt: skip
    session.commit()


def public(row: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=row.id,
        name=row.name,
        role=ApiKeyRole(row.role),
        prefix=row.prefix,
        created_by_id=row.created_by_id,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at) if row.expires_at else None,
        last_used_at=as_utc(row.last_used_at) if row.last_used_at else None,
    )
