"""``/api/v1/handoffs``: thin routes over ``shared.handoffs``."""

import logging
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Connection
from sqlmodel import Session

from services.api.deps import (
    ClaimFlightsDep,
    get_claim_lock_factory,
)
from services.api.errors import errors
from services.api.in_thread import InThread, in_thread, json_response, json_text_response
from shared.assessments.service import reopen_assessment
from shared.auth.tokens import Principal
from shared.core.errors import ServiceUnavailable
from shared.core.jobs import (
    JobState,
    assessment_job_state,
    enqueue_assessment,
    enqueue_created_assessment,
)
from shared.core.models import ClaimConflictBody, ErrorBody, Role
from shared.core.ratelimit import Limit
from shared.core.script_batch import batched_scripts
from shared.core.settings import Settings
from shared.events.models import EventList
from shared.events.record import handoff_history
from shared.handoffs import claims, lifecycle, queries
from shared.handoffs.claims import ClaimLockFactory
from shared.handoffs.models import (
    HandoffCreate,
    HandoffPage,
    HandoffPublic,
    HandoffStatus,
    ReassignBody,
    ResolveBody,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/handoffs", tags=["handoffs"])


ClaimLocks = Annotated[ClaimLockFactory, Depends(get_claim_lock_factory)]
#: Each route's blocking work runs in one threadpool hop (``services.api.in_thread``).
Anyone = Annotated[InThread, Depends(in_thread())]
Senior = Annotated[InThread, Depends(in_thread(Role.senior, Role.admin))]
Creator = Annotated[InThread, Depends(in_thread(limit=Limit.CREATES))]
Claimer = Annotated[InThread, Depends(in_thread(Role.senior, Role.admin, limit=Limit.CLAIMS))]


@router.post(
    "",
    status_code=201,
    response_model=HandoffPublic,
    responses=errors(400, 409, 413, 429),
)
async def create_handoff(
    body: HandoffCreate,
    work: Creator,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    def create(session: Session, principal: Principal) -> Response:
        # The event's publish and the job's enqueue: one Redis round trip.
        with batched_scripts(work.redis):
            handoff, created = lifecycle.create_handoff(
                session=session,
                principal=principal,
                body=body,
                claim_sla_seconds=work.settings.claim_sla_seconds,
                idempotency_key=idempotency_key,
                present=work.present,
                redactors=work.redactors,
            )
            if created:
                enqueue_created_assessment(
                    work.redis,
                    handoff_id=handoff.id,
                    org_id=handoff.org_id,
                    settings=work.settings,
                )
        if not created:
            return json_response(handoff, status_code=201, headers=REPLAYED)
        return json_response(handoff, status_code=201)

    return await work.run(create)


REPLAYED = {"Idempotent-Replayed": "true"}


def _enqueue_assessment(redis: Redis, handoff: HandoffPublic, settings: Settings) -> None:
    try:
        enqueue_assessment(redis, handoff_id=handoff.id, org_id=handoff.org_id, settings=settings)
    except RedisError as exc:
        # The handoff is committed; the reconciler enqueues it once Redis is back.
        log.warning("could not enqueue assessment for %s: %s", handoff.id, exc)


#: A user id as tokens carry it (``sub``: 1–128 characters, no NUL), or ``me``.
UserFilter = Annotated[str | None, Query(min_length=1, max_length=128, pattern="^[^\x00]+$")]


class ForFilter(StrEnum):
    me = "me"


@router.get("", response_model=HandoffPage, responses=errors(429))
async def list_handoffs(
    work: Anyone,
    status: HandoffStatus | None = None,
    domain: Annotated[str | None, Query(min_length=1, max_length=64, pattern="^[^\x00]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    created_by: UserFilter = None,
    claimed_by: UserFilter = None,
    assigned_to: UserFilter = None,
    for_: Annotated[ForFilter | None, Query(alias="for")] = None,
) -> Response:
    """``created_by``, ``claimed_by`` and ``assigned_to`` take a user id, or ``me``
    for the caller; ``for=me`` keeps the handoffs whose current level targets the
    caller (a team they are in, or all seniors)."""

    def page(connection: Connection, principal: Principal) -> Response:
        return json_text_response(
            queries.list_handoffs_json(
                connection=connection,
                org_id=principal.org_id,
                status=status,
                domain=domain,
                limit=limit,
                cursor=cursor,
                created_by=_user(created_by, principal),
                claimed_by=_user(claimed_by, principal),
                assigned_to=_user(assigned_to, principal),
                for_principal=principal if for_ is ForFilter.me else None,
            )
        )

    return await work.read_rows(page)


def _user(value: str | None, principal: Principal) -> str | None:
    return principal.user_id if value == "me" else value


@router.get("/{handoff_id}", response_model=HandoffPublic, responses=errors(404, 429))
async def get_handoff(handoff_id: str, work: Anyone) -> Response:
    def read(connection: Connection, principal: Principal) -> Response:
        return json_text_response(
            queries.get_handoff_json(
                connection=connection, org_id=principal.org_id, handoff_id=handoff_id
            )
        )

    return await work.read_rows(read)


@router.get("/{handoff_id}/history", response_model=EventList, responses=errors(404, 429))
async def get_history(handoff_id: str, work: Anyone) -> Response:
    def read(session: Session, principal: Principal) -> Response:
        handoff = queries.get_handoff(
            session=session, org_id=principal.org_id, handoff_id=handoff_id
        )
        return json_response(EventList(items=handoff_history(session, handoff=handoff)))

    return await work.read(read)


@router.post(
    "/{handoff_id}/claim",
    response_model=HandoffPublic,
    responses=errors(403, 404, 409, 413, 429, conflict_model=ClaimConflictBody | ErrorBody),
)
async def claim_handoff(
    handoff_id: str, work: Claimer, claim_locks: ClaimLocks, flights: ClaimFlightsDep
) -> Response:
    def claim(session: Session, principal: Principal) -> Response:
        return json_response(
            claims.claim_handoff(
                session=session,
                principal=principal,
                handoff_id=handoff_id,
                claim_lock=claim_locks,
                flights=flights,
            )
        )

    return await work.run(claim)


@router.post(
    "/{handoff_id}/release",
    response_model=HandoffPublic,
    responses=errors(403, 404, 409, 413, 429),
)
async def release_handoff(handoff_id: str, work: Senior) -> Response:
    def release(session: Session, principal: Principal) -> Response:
        return json_response(
            claims.release_handoff(
                session=session, principal=principal, handoff_id=handoff_id, present=work.present
            )
        )

    return await work.run(release)


@router.post(
    "/{handoff_id}/reassign",
    response_model=HandoffPublic,
    responses=errors(400, 403, 404, 409, 413, 429),
)
async def reassign_handoff(handoff_id: str, body: ReassignBody, work: Senior) -> Response:
    """Hand a claimed handoff to another senior (the claimer or an admin): one
    present as a senior or admin, or a member of one of the org's teams."""

    def reassign(session: Session, principal: Principal) -> Response:
        return json_response(
            claims.reassign_handoff(
                session=session,
                principal=principal,
                handoff_id=handoff_id,
                body=body,
                present=work.present,
                redactors=work.redactors,
            )
        )

    return await work.run(reassign)


@router.post(
    "/{handoff_id}/resolve",
    response_model=HandoffPublic,
    responses=errors(400, 403, 404, 409, 413, 429),
)
async def resolve_handoff(handoff_id: str, body: ResolveBody, work: Senior) -> Response:
    def resolve(session: Session, principal: Principal) -> Response:
        return json_response(
            lifecycle.resolve_handoff(
                session=session,
                principal=principal,
                handoff_id=handoff_id,
                resolution_notes=body.resolution_notes,
                redactors=work.redactors,
            )
        )

    return await work.run(resolve)


@router.post(
    "/{handoff_id}/cancel", response_model=HandoffPublic, responses=errors(403, 404, 409, 413, 429)
)
async def cancel_handoff(handoff_id: str, work: Anyone) -> Response:
    def cancel(session: Session, principal: Principal) -> Response:
        return json_response(
            lifecycle.cancel_handoff(session=session, principal=principal, handoff_id=handoff_id)
        )

    return await work.run(cancel)


@router.post(
    "/{handoff_id}/assessment/retry",
    status_code=202,
    response_model=HandoffPublic,
    responses=errors(403, 404, 409, 413, 429, 503),
)
async def retry_assessment(handoff_id: str, work: Senior) -> Response:
    """Run the assessment again after it failed (or its job was lost)."""

    def retry(session: Session, principal: Principal) -> Response:
        handoff = queries.get_handoff(
            session=session, org_id=principal.org_id, handoff_id=handoff_id
        )
        session.rollback()  # the 404 check is done; hold no transaction while Redis answers
        try:
            state, _ = assessment_job_state(work.redis, handoff.id)
        except RedisError as exc:
            raise ServiceUnavailable(
                "The job queue is unavailable; try again shortly.", code="queue_unavailable"
            ) from exc
        reopened = reopen_assessment(
            session=session,
            principal=principal,
            handoff_id=handoff.id,
            job_is_live=state is JobState.LIVE,
        )
        _enqueue_assessment(work.redis, reopened, work.settings)
        return json_response(reopened, status_code=202)

    return await work.run(retry)
