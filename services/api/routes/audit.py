"""``GET /api/v1/audit``: the org's audit log, newest first (admins). The log
has no route that changes it."""

from typing import Annotated

from fastapi import APIRouter, Query

from services.api.deps import AdminDep, SessionDep
from services.api.errors import errors
from shared.audit import service
from shared.audit.models import AuditPage

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit", responses=errors(403, 429))
def list_audit(
    principal: AdminDep,
    session: SessionDep,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    actor_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuditPage:
    return service.list_audit(
        session=session,
        org_id=principal.org_id,
        kind=kind,
        actor_id=actor_id,
        limit=limit,
        cursor=cursor,
    )
