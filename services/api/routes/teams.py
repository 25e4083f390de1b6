"""``/api/v1/me``, ``/api/v1/teams`` and ``/api/v1/escalation-policy``: thin
routes over ``shared.teams``. Everyone in the org reads; admins write."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.api.deps import AdminDep, PrincipalDep, SessionDep, SettingsDep
from services.api.errors import errors
from shared.audit.service import actor_of
from shared.routing import policies, teams
from shared.routing.models import (
    EscalationPolicyBody,
    EscalationPolicyPublic,
    MePublic,
    TeamBody,
    TeamPage,
    TeamPublic,
)

router = APIRouter(prefix="/api/v1", tags=["teams"])

#: ``GET /teams`` pages: a page of whole teams of 500 members each is about 100 KB a team.
DEFAULT_TEAMS_PAGE = 20
MAX_TEAMS_PAGE = 100
#: A body-reading write: undecodable (400), not an admin (403), too big (413), 409s.
WRITE_ERRORS = errors(400, 403, 409, 413, 429)


@router.get("/me", responses=errors(429))
def get_me(principal: PrincipalDep, session: SessionDep) -> MePublic:
    return teams.describe_me(session=session, principal=principal)


@router.get("/teams", responses=errors(422, 429))
def list_teams(
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_TEAMS_PAGE)] = DEFAULT_TEAMS_PAGE,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    members: bool = True,
) -> TeamPage:
    """The org's teams by name, a page at a time (``next_cursor`` until the last).
    ``members=false``: each team's ``member_count`` instead of its members."""
    return teams.list_teams(
        session=session, org_id=principal.org_id, limit=limit, cursor=cursor, members=members
    )


@router.post("/teams", status_code=201, responses=WRITE_ERRORS)
def create_team(
    body: TeamBody, principal: AdminDep, session: SessionDep, settings: SettingsDep
) -> TeamPublic:
    """409 ``team_limit_reached`` once the org has ``ESCALATIONS_MAX_TEAMS_PER_ORG``
    teams (default 100)."""
    return teams.create_team(
        actor=actor_of(principal),
        session=session,
        org_id=principal.org_id,
        body=body,
        max_teams=settings.max_teams_per_org,
    )


@router.get("/teams/{team_id}", responses=errors(404, 429))
def get_team(team_id: str, principal: PrincipalDep, session: SessionDep) -> TeamPublic:
    return teams.get_team(session=session, org_id=principal.org_id, team_id=team_id)


@router.put("/teams/{team_id}", responses=errors(400, 403, 404, 409, 413, 429))
def replace_team(
    team_id: str, body: TeamBody, principal: AdminDep, session: SessionDep
) -> TeamPublic:
    return teams.replace_team(
        session=session,
        actor=actor_of(principal),
        org_id=principal.org_id,
        team_id=team_id,
        body=body,
    )


@router.delete("/teams/{team_id}", status_code=204, responses=errors(403, 404, 409, 413, 429))
def delete_team(team_id: str, principal: AdminDep, session: SessionDep) -> Response:
    teams.delete_team(
        session=session, actor=actor_of(principal), org_id=principal.org_id, team_id=team_id
    )
    return Response(status_code=204)


@router.get("/escalation-policy", responses=errors(429))
def get_escalation_policy(
    principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> EscalationPolicyPublic:
    return policies.get_policy(
        session=session, org_id=principal.org_id, claim_sla_seconds=settings.claim_sla_seconds
    )


@router.put("/escalation-policy", responses=errors(400, 403, 409, 413, 429))
def put_escalation_policy(
    body: EscalationPolicyBody, principal: AdminDep, session: SessionDep
) -> EscalationPolicyPublic:
    return policies.put_policy(
        session=session, actor=actor_of(principal), org_id=principal.org_id, body=body
    )
