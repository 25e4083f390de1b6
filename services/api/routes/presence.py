"""``/api/v1/presence``: who in the caller's org is present, and the heartbeat
that keeps a senior or admin present without an open event stream."""

from fastapi import APIRouter, Response

from services.api.deps import PresenceDep, PrincipalDep, SeniorDep
from services.api.errors import errors
from shared.routing.presence import Person, PresenceList

router = APIRouter(prefix="/api/v1/presence", tags=["presence"])


@router.get("", responses=errors(429, 503))
def list_present(principal: PrincipalDep, presence: PresenceDep) -> PresenceList:
    """The seniors and admins of the caller's org with an open event stream on
    any replica or a recent heartbeat, by ``since``. 503 ``presence_unavailable``
    when Redis does not answer (retry)."""
    return presence.present(org_id=principal.org_id)


@router.post("/heartbeat", status_code=204, responses=errors(403, 413, 429, 503))
def heartbeat(principal: SeniorDep, presence: PresenceDep) -> Response:
    """The caller (senior or admin) is present for ``ESCALATIONS_PRESENCE_HEARTBEAT_SECONDS``
    (default 60). 503 ``presence_unavailable`` when Redis does not answer."""
    person = Person(id=principal.user_id, name=principal.name, role=principal.role)
    presence.heartbeat(org_id=principal.org_id, person=person)
    return Response(status_code=204)
