"""``/api/v1/settings/retention``, ``POST /api/v1/handoffs/{id}/purge`` and
``POST /api/v1/people/{user_id}/erase``: thin routes over ``shared.retention``.
Admins only."""

from fastapi import APIRouter

from services.api.deps import AdminDep, HandoffDep, SessionDep, SettingsDep
from services.api.errors import errors
from shared.handoffs.models import HandoffPublic
from shared.handoffs.views import handoff_public
from shared.retention import erasure, service
from shared.retention.erasure import ErasureReport
from shared.retention.models import RetentionBody, RetentionPublic

router = APIRouter(prefix="/api/v1", tags=["retention"])


@router.get("/settings/retention", responses=errors(403, 429))
def get_retention(
    principal: AdminDep, session: SessionDep, settings: SettingsDep
) -> RetentionPublic:
    return service.get_retention(session=session, org_id=principal.org_id, settings=settings)


@router.put("/settings/retention", responses=errors(400, 403, 413, 429))
def put_retention(
    body: RetentionBody, principal: AdminDep, session: SessionDep, settings: SettingsDep
) -> RetentionPublic:
    return service.put_retention(session=session, actor=principal, body=body, settings=settings)


@router.post("/handoffs/{handoff_id}/purge", responses=errors(403, 404, 409, 429))
def purge_handoff(principal: AdminDep, handoff: HandoffDep, session: SessionDep) -> HandoffPublic:
    """Purge a closed handoff's content now (as retention would); again: a no-op."""
    service.purge_now(session=session, actor=principal, handoff=handoff)
    session.refresh(handoff)
    return handoff_public(handoff)


@router.post("/people/{user_id}/erase", responses=errors(403, 409, 429))
def erase_person(user_id: str, principal: AdminDep, session: SessionDep) -> ErasureReport:
    """Right to erasure: purge what the person created, replace their name everywhere."""
    return erasure.erase_person(session=session, actor=principal, user_id=user_id)
