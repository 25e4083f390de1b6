"""Request dependencies as ``Annotated`` aliases: settings, database session,
Redis, the authenticated caller, role checks and the org-scoped handoff.

FastAPI runs a plain ``def`` dependency in the threadpool, one hand-off per
dependency per request; those that only read app state or check a value are
``async def`` so they run inline. Those that wait on the database or Redis stay
plain functions (an ``async def`` would block the event loop)."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis import Redis
from sqlalchemy import Engine
from sqlmodel import Session

from shared.auth.authenticator import Authenticator
from shared.auth.people import PeopleRegistry
from shared.auth.tokens import Principal
from shared.core.db import session_scope
from shared.core.errors import Forbidden, NotAuthenticated
from shared.core.locks import ClaimLock
from shared.core.models import Role
from shared.core.ratelimit import Limit, RateLimits
from shared.core.settings import Settings
from shared.handoffs.claim_flights import ClaimFlights
from shared.handoffs.models import Handoff
from shared.handoffs.queries import get_handoff
from shared.redaction.service import RedactorCache
from shared.routing.assignment import PresentLookup, present_from
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

bearer = HTTPBearer(
    auto_error=False,
    description="A JWT from `escalations token` or the identity provider, or an API key (`esk_…`).",
)


async def get_rate_limits(request: Request) -> RateLimits:
    return request.app.state.rate_limits


RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]


async def get_presence(request: Request) -> Presence:
    return request.app.state.presence


PresenceDep = Annotated[Presence, Depends(get_presence)]


async def get_present_lookup(presence: PresenceDep) -> PresentLookup:
    return present_from(presence)


PresentDep = Annotated[PresentLookup, Depends(get_present_lookup)]


def client_address(request: Request) -> str:
    """The peer's address (uvicorn puts the proxy's ``X-Forwarded-For`` client here
    when the proxy is trusted, ``FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else "unknown"


def authenticate(
    authenticator: Authenticator,
    limits: RateLimits,
    address: str,
    credentials: HTTPAuthorizationCredentials | None,
    people: PeopleRegistry,
) -> Principal:
    """An address past the failed-authentication limit gets 429 before its token
    is looked at; a refused token counts one failure for its address. The caller
    is then ``recognized``. Blocking (Redis; now and then the database: people, an
    API key's row at most every 0.5 s; the provider's keys when they must be
    fetched): run it in a worker thread."""
    limits.check(Limit.AUTH_FAILURES, address)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("Missing bearer token.")
    with limits.auth_failures_counted(address):
        principal = authenticator.principal(credentials.credentials)
    return recognized(principal, people)


def recognized(principal: Principal, people: PeopleRegistry) -> Principal:
    """Every caller the API authenticates passes here, whatever proved who they
    are (bearer token, stream cookie, and any other way added later): they are
    remembered in the org's people (``shared.auth.people``; throttled, so this is
    usually a dictionary lookup). An API key is not a person: it is not
    remembered (so it is never a reassign target). Returns ``principal``."""
    if not principal.is_api_key:
        people.seen(principal)
    return principal


def get_principal(
    request: Request,
    limits: RateLimitsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    state = request.app.state
    address = client_address(request)
    return authenticate(state.authenticator, limits, address, credentials, state.people)


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
    return get_handoff(session=session, org_id=principal.org_id, handoff_id=handoff_id)


HandoffDep = Annotated[Handoff, Depends(get_org_handoff)]


def get_org_webhook(webhook_id: str, principal: AdminDep, session: SessionDep) -> Webhook:
    """The admin's org's webhook, or 404 ``webhook_not_found`` (another org's too)."""
    return load_webhook(session=session, org_id=principal.org_id, webhook_id=webhook_id)


WebhookDep = Annotated[Webhook, Depends(get_org_webhook)]


def rate_limit(limit: Limit):
    """A route dependency counting one request of the caller, keyed by (org,
    user), against ``limit``; past it the request gets 429 before the route runs."""

    def hit(principal: PrincipalDep, limits: RateLimitsDep) -> None:
        limits.hit(limit, principal.org_id, principal.user_id)

    return Depends(hit)


def org_rate_limit(limit: Limit):
    """As :func:`rate_limit`, keyed by the caller's org alone: every user of the
    org counts against one window (for what costs the org's shared resources)."""

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
