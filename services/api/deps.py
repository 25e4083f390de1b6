"""Request dependencies as ``Annotated`` aliases: settings, database session,
Redis, the authenticated caller, role checks and the org-scoped handoff."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis import Redis
from sqlalchemy import Engine
from sqlmodel import Session

from shared.auth import Principal, decode_token
from shared.db import session_scope
from shared.errors import Forbidden, NotAuthenticated
from shared.handoffs import get_handoff
from shared.locks import ClaimLock
from shared.models import Handoff, Role
from shared.settings import Settings


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_redis(request: Request) -> Redis:
    return request.app.state.redis


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with session_scope(engine) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
RedisDep = Annotated[Redis, Depends(get_redis)]

bearer = HTTPBearer(auto_error=False, description="A JWT from `escalations token`.")


def get_principal(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("Missing bearer token.")
    return decode_token(credentials.credentials, secret=settings.jwt_secret)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role):
    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            allowed = " or ".join(role.value for role in roles)
            raise Forbidden(f"This action needs the {allowed} role.", code="insufficient_role")
        return principal

    return check


SeniorDep = Annotated[Principal, Depends(require_roles(Role.senior, Role.admin))]
AdminDep = Annotated[Principal, Depends(require_roles(Role.admin))]


def get_org_handoff(handoff_id: str, principal: PrincipalDep, session: SessionDep) -> Handoff:
    return get_handoff(session=session, org_id=principal.org_id, handoff_id=handoff_id)


HandoffDep = Annotated[Handoff, Depends(get_org_handoff)]


def get_claim_lock_factory(settings: SettingsDep, redis: RedisDep):
    def make(handoff_id: str) -> ClaimLock | None:
        if not settings.claim_lock_enabled:
            return None
        return ClaimLock(redis, handoff_id, ttl_seconds=settings.claim_lock_ttl_seconds)

    return make
