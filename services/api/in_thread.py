"""One threadpool hop per request: authentication, the database work and the
response's JSON together in one worker thread.

FastAPI runs each plain ``def`` dependency, a sync route, a generator
dependency's enter and exit, and a sync route's response validation in the
threadpool, each a hand-off between the event loop and a thread (anyio's
limiter, a queue, a condition, a future). Five or six of them cost more CPU
than the query. The hot routes are ``async def``, their dependencies do no
I/O, and everything that blocks goes to :meth:`InThread.run` at once.

The hop itself is the app's own ``ThreadPoolExecutor`` (``app.state.request_threads``,
made and joined by the lifespan) through ``loop.run_in_executor``: 22 µs of CPU
per hop against 84 µs for anyio's (its capacity limiter, a queue per worker
thread). The work runs in a copy of the request's context (its request id and
logging context), as anyio's hop does."""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import BaseModel
from redis import Redis
from sqlalchemy import Connection, Engine
from sqlmodel import Session

from services.api.authentication import Authentication, Credentials
from services.api.deps import CredentialsDep, check_role
from shared.auth.tokens import Principal
from shared.core.db import session_scope
from shared.core.models import Role
from shared.core.ratelimit import Limit
from shared.core.settings import Settings
from shared.redaction.service import RedactorCache
from shared.routing.assignment import PresentLookup, present_from
from shared.routing.presence import Presence

T = TypeVar("T")

#: The route's blocking work: given an open session and the authenticated caller.
Work = Callable[[Session, Principal], T]
#: Work that reads plain rows: given a connection and the authenticated caller.
RowsWork = Callable[[Connection, Principal], T]


def request_threads(max_workers: int) -> ThreadPoolExecutor:
    """The threads of the hops (one per app; its lifespan shuts it down, waiting)."""
    return ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="request")


@dataclass(frozen=True)
class InThread:
    """What a request needs to authenticate its caller and reach the database,
    gathered on the event loop without I/O; and the app's clients its work uses,
    here rather than as dependencies of their own (FastAPI solves each one on
    every request: four of them were ~2 % of a create's samples)."""

    engine: Engine
    read_engine: Engine  # ``shared.core.db.autocommit_reads(engine)``
    threads: ThreadPoolExecutor
    settings: Settings
    authentication: Authentication
    credentials: Credentials
    roles: tuple[Role, ...]
    limit: Limit | None
    redis: Redis
    redactors: RedactorCache
    presence: Presence

    @property
    def present(self) -> PresentLookup:
        """Who is present in an org, for an assign-mode level (``present_from``)."""
        return present_from(self.presence)

    async def run(self, work: Work[T]) -> T:
        """``work`` in a worker thread, after the checks the plain dependencies
        make (in their order: failed-authentication limit, token, the route's
        rate limit, role), in a ``session_scope`` that closes before the hop ends."""
        return await self._hop(self._run, work, self.engine)

    async def read(self, work: Work[T]) -> T:
        """:meth:`run` for work that only reads (it never commits): on PostgreSQL its
        statements run without a surrounding transaction."""
        return await self._hop(self._run, work, self.read_engine)

    async def read_rows(self, work: RowsWork[T]) -> T:
        """:meth:`read` for work that reads plain rows (no ORM instances): on a
        connection of the read engine, without an ORM session (its transaction
        bookkeeping cost 0.3–0.4 ms CPU per request)."""
        return await self._hop(self._read_rows, work)

    async def _hop(self, function: Callable[..., T], *args: Any) -> T:
        context = copy_context()  # contextvars (request id, logging) go with the work
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.threads, context.run, function, *args)

    def _run(self, work: Work[T], engine: Engine) -> T:
        principal = self._principal()
        with session_scope(engine) as session:
            return work(session, principal)

    def _read_rows(self, work: RowsWork[T]) -> T:
        principal = self._principal()
        with self.read_engine.connect() as connection:
            return work(connection, principal)

    def _principal(self) -> Principal:
        principal = self.authentication.principal(self.credentials)
        if self.limit is not None:
            self.authentication.limits.hit(self.limit, principal.org_id, principal.user_id)
        if self.roles:
            check_role(principal, self.roles)
        return principal


def in_thread(*roles: Role, limit: Limit | None = None):
    """A dependency giving the route its :class:`InThread`; ``roles`` (any when
    empty) and ``limit`` (a rate counted per caller) are checked in the thread."""

    async def make(request: Request, credentials: CredentialsDep) -> InThread:
        # The app's state read here, not through ``get_engine`` and its kind: FastAPI
        # solves each sub-dependency on every request (its solver held a fifth of a
        # get by id's GIL samples). ``credentials`` stays one: it is the OpenAPI
        # security scheme, and every route's way in (``services.api.authentication``).
        state = request.app.state
        return InThread(
            engine=state.engine,
            read_engine=state.read_engine,
            threads=state.request_threads,
            settings=state.settings,
            authentication=state.authentication,
            credentials=credentials,
            roles=roles,
            limit=limit,
            redis=state.redis,
            redactors=state.redactors,
            presence=state.presence,
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


def json_text_response(text: str) -> Response:
    """JSON already serialized (``shared.handoffs.views`` keeps rows' JSON) as a 200."""
    return Response(text, media_type="application/json")
