"""``/api/v1/handoffs``: thin routes over ``shared.handoffs``."""

import logging
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from redis.exceptions import RedisError

from services.api.deps import (
    HandoffDep,
    PresentDep,
    PrincipalDep,
    RedisDep,
    SeniorDep,
    SessionDep,
    SettingsDep,
    get_claim_lock_factory,
    rate_limit,
)
from services.api.errors import errors
from shared import handoffs
from shared.assessments import reopen_assessment
from shared.errors import ServiceUnavailable
from shared.events import handoff_history, handoff_public
from shared.handoffs import ClaimLockFactory
from shared.jobs import JobState, assessment_job_state, enqueue_assessment
from shared.models import (
    ClaimConflictBody,
    ErrorBody,
    EventList,
    HandoffCreate,
    HandoffPage,
    HandoffPublic,
    HandoffStatus,
    ReassignBody,
    ResolveBody,
)
from shared.ratelimit import Limit

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/handoffs", tags=["handoffs"])


ClaimLocks = Annotated[ClaimLockFactory, Depends(get_claim_lock_factory)]


@router.post(
    "",
    status_code=201,
    responses=errors(400, 409, 413, 429),
    dependencies=[rate_limit(Limit.CREATES)],
)
def create_handoff(
    body: HandoffCreate,
    principal: PrincipalDep,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    response: Response,
    present: PresentDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> HandoffPublic:
    handoff, created = handoffs.create_handoff(
        session=session,
        principal=principal,
        body=body,
        claim_sla_seconds=settings.claim_sla_seconds,
        idempotency_key=idempotency_key,
        present=present,
    )
    if created:
        _enqueue_assessment(redis, handoff, settings)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return handoff


def _enqueue_assessment(redis: RedisDep, handoff: HandoffPublic, settings: SettingsDep) -> None:
    try:
        enqueue_assessment(redis, handoff_id=handoff.id, org_id=handoff.org_id, settings=settings)
    except RedisError as exc:
        # The handoff is committed; the reconciler enqueues it once Redis is back.
        log.warning("could not enqueue assessment for %s: %s", handoff.id, exc)


#: A user id as tokens carry it (``sub``: 1–128 characters, no NUL), or ``me``.
UserFilter = Annotated[str | None, Query(min_length=1, max_length=128, pattern="^[^\x00]+$")]


class ForFilter(StrEnum):
    me = "me"


@router.get("", responses=errors(429))
def list_handoffs(
    principal: PrincipalDep,
    session: SessionDep,
    status: HandoffStatus | None = None,
    domain: Annotated[str | None, Query(min_length=1, max_length=64, pattern="^[^\x00]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    created_by: UserFilter = None,
    claimed_by: UserFilter = None,
    assigned_to: UserFilter = None,
    for_: Annotated[ForFilter | None, Query(alias="for")] = None,
) -> HandoffPage:
    """``created_by``, ``claimed_by`` and ``assigned_to`` take a user id, or ``me``
    for the caller; ``for=me`` keeps the handoffs whose current level targets the
    caller (a team they are in, or all seniors)."""
    return handoffs.list_handoffs(
        session=session,
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


def _user(value: str | None, principal: PrincipalDep) -> str | None:
    return principal.user_id if value == "me" else value


@router.get("/{handoff_id}", responses=errors(404, 429))
def get_handoff(handoff: HandoffDep) -> HandoffPublic:
    return handoff_public(handoff)


@router.get("/{handoff_id}/history", responses=errors(404, 429))
def get_history(handoff: HandoffDep, session: SessionDep) -> EventList:
    return EventList(items=handoff_history(session, handoff=handoff))


@router.post(
    "/{handoff_id}/claim",
    responses=errors(403, 404, 409, 413, 429, conflict_model=ClaimConflictBody | ErrorBody),
    dependencies=[rate_limit(Limit.CLAIMS)],
)
def claim_handoff(
    handoff_id: str, principal: SeniorDep, session: SessionDep, claim_locks: ClaimLocks
) -> HandoffPublic:
    return handoffs.claim_handoff(
        session=session, principal=principal, handoff_id=handoff_id, claim_lock=claim_locks
    )


@router.post("/{handoff_id}/release", responses=errors(403, 404, 409, 413, 429))
def release_handoff(
    handoff_id: str, principal: SeniorDep, session: SessionDep, present: PresentDep
) -> HandoffPublic:
    return handoffs.release_handoff(
        session=session, principal=principal, handoff_id=handoff_id, present=present
    )


@router.post("/{handoff_id}/reassign", responses=errors(400, 403, 404, 409, 413, 429))
def reassign_handoff(
    handoff_id: str,
    body: ReassignBody,
    principal: SeniorDep,
    session: SessionDep,
    present: PresentDep,
) -> HandoffPublic:
    """Hand a claimed handoff to another senior (the claimer or an admin): one
    present as a senior or admin, or a member of one of the org's teams."""
    return handoffs.reassign_handoff(
        session=session, principal=principal, handoff_id=handoff_id, body=body, present=present
    )


@router.post("/{handoff_id}/resolve", responses=errors(400, 403, 404, 409, 413, 429))
def resolve_handoff(
    handoff_id: str, body: ResolveBody, principal: SeniorDep, session: SessionDep
) -> HandoffPublic:
    return handoffs.resolve_handoff(
        session=session,
        principal=principal,
        handoff_id=handoff_id,
        resolution_notes=body.resolution_notes,
    )


@router.post("/{handoff_id}/cancel", responses=errors(403, 404, 409, 413, 429))
def cancel_handoff(handoff_id: str, principal: PrincipalDep, session: SessionDep) -> HandoffPublic:
    return handoffs.cancel_handoff(session=session, principal=principal, handoff_id=handoff_id)


@router.post(
    "/{handoff_id}/assessment/retry",
    status_code=202,
    responses=errors(403, 404, 409, 413, 429, 503),
)
def retry_assessment(
    principal: SeniorDep,
    handoff: HandoffDep,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
) -> HandoffPublic:
    """Run the assessment again after it failed (or its job was lost)."""
    session.rollback()  # the 404 check is done; hold no transaction while Redis answers
    try:
        state, _ = assessment_job_state(redis, handoff.id)
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
    _enqueue_assessment(redis, reopened, settings)
    return reopened
