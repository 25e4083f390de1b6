"""Who is calling: the one way every route learns it.

A request's :class:`Credentials` are read without I/O by :data:`credentials`,
the dependency every authenticated route has (it is also the OpenAPI security
scheme). :meth:`Authentication.principal` turns them into the caller, the same
for all three ways a route runs its blocking work: ``deps.PrincipalDep`` (a
plain dependency, in the threadpool), ``in_thread.InThread`` (in the route's
one worker-thread hop) and the event stream (``routes/events.py``, a bare ASGI
app, in its admission's worker thread). Only the stream also takes the stream
cookie, which a browser's ``EventSource`` sends instead of a header."""

from dataclasses import dataclass

from fastapi.security import HTTPBearer
from redis import Redis
from starlette.requests import Request

from shared.auth.authenticator import Authenticator
from shared.auth.people import PeopleRegistry
from shared.auth.tokens import STREAM_AUDIENCE, Principal, decode_token
from shared.core.errors import NotAuthenticated
from shared.core.ratelimit import Limit, RateLimits
from shared.core.settings import Settings
from shared.events import stream_sessions


@dataclass(frozen=True)
class Credentials:
    """What a request offers as proof of its caller: the peer's address (the
    failed-authentication limit counts per address), the token of its
    ``Authorization: Bearer`` header, and, on the event stream only
    (``stream``), the stream cookie."""

    address: str
    bearer: str | None
    stream_cookie: str | None = None
    stream: bool = False


def client_address(request: Request) -> str:
    """The peer's address (uvicorn puts the proxy's ``X-Forwarded-For`` client here
    when the proxy is trusted, ``FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else "unknown"


class BearerCredentials(HTTPBearer):
    """The request's :class:`Credentials` (without the stream cookie); as an
    ``HTTPBearer`` it is what OpenAPI shows as the routes' security scheme."""

    async def __call__(self, request: Request) -> Credentials:  # type: ignore[override]
        header = await super().__call__(request)
        token = header.credentials if header is not None else None
        return Credentials(address=client_address(request), bearer=token)


credentials = BearerCredentials(
    auto_error=False,
    description="A JWT from `escalations token` or the identity provider, or an API key (`esk_…`).",
)


@dataclass(frozen=True)
class Authentication:
    """One per app (``app.state.authentication``, built by the lifespan)."""

    authenticator: Authenticator
    limits: RateLimits
    people: PeopleRegistry
    redis: Redis
    settings: Settings

    def principal(self, credentials: Credentials) -> Principal:
        """The caller. An address past the failed-authentication limit gets 429
        (``RateLimited``) before its credentials are looked at; none at all is
        ``NotAuthenticated`` and counts nothing; a refused token or cookie is
        ``NotAuthenticated`` and counts one failure for the address. A bearer
        token wins over the stream cookie. The caller is then :func:`recognized`.
        Blocking (Redis: the failed-authentication check, at most every 0.5 s for
        an address without failures; now and then the database: people, an API
        key's row at most every 0.5 s; the provider's keys when they must be
        fetched): call from a worker thread. A JWT verified within 30 s is not
        verified again (``shared.auth.verified``)."""
        self.limits.check(Limit.AUTH_FAILURES, credentials.address)
        if credentials.bearer is None and not credentials.stream_cookie:
            missing = "bearer token or stream cookie" if credentials.stream else "bearer token"
            raise NotAuthenticated(f"Missing {missing}.")
        with self.limits.auth_failures_counted(credentials.address):
            if credentials.bearer is not None:
                principal = self.authenticator.principal(credentials.bearer)
            else:
                principal = self._stream_session(credentials.stream_cookie or "")
        return recognized(principal, self.people)

    def _stream_session(self, cookie: str) -> Principal:
        """The stream cookie's caller, unless its session was revoked
        (``ServiceUnavailable`` when Redis cannot say: it fails closed)."""
        principal = decode_token(cookie, settings=self.settings, audience=STREAM_AUDIENCE)
        assert principal.session_id is not None  # decode_token requires a jti on stream tokens
        if stream_sessions.is_revoked(self.redis, principal.session_id):
            raise NotAuthenticated("Stream session revoked.")
        return principal


def recognized(principal: Principal, people: PeopleRegistry) -> Principal:
    """Every caller the API authenticates passes here, whatever proved who they
    are: they are remembered in the org's people (``shared.auth.people``; throttled, so
    this is usually a dictionary lookup). An API key is not a person: it is not
    remembered (so it is never a reassign target). Returns ``principal``."""
    if not principal.is_api_key:
        people.seen(principal)
    return principal
