"""``/api/v1/people``: everyone of the caller's org who authenticated lately."""

from fastapi import APIRouter

from services.api.deps import PrincipalDep, SessionDep
from services.api.errors import errors
from shared.auth.people import PeopleList, list_people

router = APIRouter(prefix="/api/v1/people", tags=["people"])


@router.get("", responses=errors(429))
def get_people(principal: PrincipalDep, session: SessionDep) -> PeopleList:
    """The org's people seen in the last 90 days, by name: id, name and role as
    their last credential said, ``last_seen_at`` (written at most every
    ``ESCALATIONS_PEOPLE_SEEN_WRITE_SECONDS``, default 300, so it may lag by that)
    and the teams that list them. Any role."""
    return list_people(session=session, org_id=principal.org_id)
