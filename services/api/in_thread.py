"""One threadpool hop per request: authentication, the database work and the
response's JSON together in one worker thread.

FastAPI runs each plain ``def`` dependency, a sync route, a generator
dependency's enter and exit, and a sync route's response validation in the
threadpool, each a hand-off between the event loop and a thread (anyio's
limiter, a queue, a condition, a future). Five or six of them cost more CPU
than the query. The hot routes are ``async def``, their dependencies do no
I/O, and everything that blocks goes to :meth:`InThread.run` at once."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from services.api.deps import (
    EngineDep,
    RateLimitsDep,
    SettingsDep,
    authenticate,
    bearer,
    check_role,
    client_address,
)
from shared.auth import Principal
from shared.db import session_scope
from shared.models import Role
from shared.ratelimit import Limit, RateLimits
from shared.settings import Settings

T = TypeVar("T")

#: The route's blocking work: given an open session and the authenticated caller.
Work = Callable[[Session, Principal], T]


@dataclass(frozen=True)
class InThread:
    """What a request needs to authenticate its caller and reach the database,
    gathered on the event loop without I/O."""

    engine: Engine
    read_engine: Engine  # ``shared.db.autocommit_reads(engine)``
    settings: Settings
    limits: RateLimits
    address: str
    credentials: HTTPAuthorizationCredentials | None
    roles: tuple[Role, ...]
    limit: Limit | None

    async def run(self, work: Work[T]) -> T:
        """``work`` in a worker thread, after the checks the plain dependencies
        make (in their order: failed-authentication limit, token, the route's
        rate limit, role), in a ``session_scope`` that closes before the hop ends."""
        return await run_in_threadpool(self._run, work, self.engine)

    async def read(self, work: Work[T]) -> T:
        """:meth:`run` for work that only reads (it never commits): on PostgreSQL its
        statements run without a surrounding transaction."""
        return await run_in_threadpool(self._run, work, self.read_engine)

    def _run(self, work: Work[T], engine: Engine) -> T:
        principal = self._principal()
        with session_scope(engine) as session:
            return work(session, principal)

    def _principal(self) -> Principal:
        principal = authenticate(self.settings, self.limits, self.address, self.credentials)
        if self.limit is not None:
            self.limits.hit(self.limit, principal.org_id, principal.user_id)
        if self.roles:
            check_role(principal, self.roles)
        return principal


def in_thread(*roles: Role, limit: Limit | None = None):
    """A dependency giving the route its :class:`InThread`; ``roles`` (any when
    empty) and ``limit`` (a rate counted per caller) are checked in the thread."""

    async def make(
        request: Request,
        engine: EngineDep,
        settings: SettingsDep,
        limits: RateLimitsDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> InThread:
        return InThread(
            engine=engine,
            read_engine=request.app.state.read_engine,
            settings=settings,
            limits=limits,
            address=client_address(request),
            credentials=credentials,
            roles=roles,
            limit=limit,
        )

    return make


def json_response(
    model: BaseModel, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``model`` as the response body, serialized once by pydantic. A route that
    returns a ``Response`` skips FastAPI's validation of its return value (the
    model was validated when it was built); its ``response_model`` still
    documents the body."""
    return Response(
        model.model_dump_json(),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )
