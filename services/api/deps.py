"""Request dependencies as ``Annotated`` aliases: settings, database session,
Redis, the authenticated caller (``services.api.authentication``), role checks
and the org-scoped handoff.

FastAPI runs a plain ``def`` dependency in the threadpool, one hand-off per
dependency per request; those that only read app state or check a value are
``async def`` so they run inline. Those that wait on the database or Redis stay
plain functions (an ``async def`` would block the event loop)."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from redis import Redis
from sqlalchemy import Engine
from sqlmodel import Session

from services.api.authentication import Authentication, Credentials, credentials
from shared.auth.tokens import Principal
from shared.core.db import session_scope
from shared.core.errors import Forbidden
from shared.core.locks import ClaimLock
from shared.core.models import Role
from shared.core.ratelimit import Limit, RateLimits
from shared.core.settings import Settings
from shared.handoffs.claim_flights import ClaimFlights
from shared.handoffs.models import Handoff
from shared.handoffs.queries import get_handoff
from shared.redaction.service import RedactorCache
from shared.routing.presence import Presence
from shared.webhooks.models import Webhook
from shared.webhooks.subscriptions import load_webhook


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_redis(request: Request) -> Redis:
    return request.app.state.redis


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with session_scope(engine) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
RedisDep = Annotated[Redis, Depends(get_redis)]


async def get_rate_limits(request: Request) -> RateLimits:
    return request.app.state.rate_limits


RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]
#: Every authenticated route's credentials (``services.api.authentication``).
CredentialsDep = Annotated[Credentials, Depends(credentials)]


async def get_presence(request: Request) -> Presence:
    return request.app.state.presence


PresenceDep = Annotated[Presence, Depends(get_presence)]


def get_principal(request: Request, credentials: CredentialsDep) -> Principal:
    """The caller (``Authentication.principal``), in the threadpool."""
    authentication: Authentication = request.app.state.authentication
    return authentication.principal(credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def check_role(principal: Principal, roles: tuple[Role, ...]) -> None:
    """Raises ``Forbidden`` (``insufficient_role``) unless ``principal`` has one of ``roles``."""
    if principal.role not in roles:
        allowed = " or ".join(role.value for role in roles)
        raise Forbidden(f"This action needs the {allowed} role.", code="insufficient_role")


def require_roles(*roles: Role):
    async def check(principal: PrincipalDep) -> Principal:
        check_role(principal, roles)
        return principal

    return check


SeniorDep = Annotated[Principal, Depends(require_roles(Role.senior, Role.admin))]
AdminDep = Annotated[Principal, Depends(require_roles(Role.admin))]


def get_org_handoff(handoff_id: str, principal: PrincipalDep, session: SessionDep) -> Handoff:
    """The caller's org's handoff, or 404 ``handoff_not_found`` (another org's too)."""
    return get_handoff(session=session, org_id=principal.org_id, handoff_id=handoff_id)


HandoffDep = Annotated[Handoff, Depends(get_org_handoff)]


def get_org_webhook(webhook_id: str, principal: AdminDep, session: SessionDep) -> Webhook:
    """The admin's org's webhook, or 404 ``webhook_not_found`` (another org's too)."""
    return load_webhook(session=session, org_id=principal.org_id, webhook_id=webhook_id)


WebhookDep = Annotated[Webhook, Depends(get_org_webhook)]


def org_rate_limit(limit: Limit):
    """A route dependency counting one request of the caller's org against
    ``limit``: every user of the org counts against one window (for what costs the
    org's shared resources); past it the request gets 429 before the route runs."""

    def hit(principal: PrincipalDep, limits: RateLimitsDep) -> None:
        limits.hit(limit, principal.org_id)

    return Depends(hit)


async def get_claim_lock_factory(settings: SettingsDep, redis: RedisDep):
    def make(handoff_id: str) -> ClaimLock | None:
        if not settings.claim_lock_enabled:
            return None
        return ClaimLock(redis, handoff_id, ttl_seconds=settings.claim_lock_ttl_seconds)

    return make


async def get_claim_flights(request: Request) -> ClaimFlights:
    return request.app.state.claim_flights


ClaimFlightsDep = Annotated[ClaimFlights, Depends(get_claim_flights)]


async def get_redactors(request: Request) -> RedactorCache:
    return request.app.state.redactors


RedactorsDep = Annotated[RedactorCache, Depends(get_redactors)]
