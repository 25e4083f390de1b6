"""``escalations up --demo``'s routing: a Networking team (the networking senior,
owning the ``networking`` domain) and a two-level policy: the team owning the
handoff's domain, then all seniors.

Written through ``shared.teams``' domain functions, so the same rules hold as
for an admin's requests. Idempotent: a second run on the same database finds the
team by name and puts it, and the policy, back as the demo wants them (an
admin's edits to either are overwritten; other teams are left alone).
"""

from dataclasses import dataclass

from sqlmodel import Session

from shared.audit import Actor
from shared.auth.demo_users import DEMO_ORG, NETWORKING_SENIOR
from shared.core.db import make_engine, session_scope
from shared.core.errors import DomainError
from shared.routing.models import (
    EscalationPolicyBody,
    LevelTarget,
    PolicyLevelBody,
    TeamBody,
    TeamMemberBody,
)
from shared.routing.policies import put_policy
from shared.routing.teams import create_team, replace_team, team_named

DEMO_TEAM = "Networking"
DEMO_DOMAIN = "networking"
#: How long the demo's first level waits for a claim before moving up.
DEFAULT_LEVEL_SECONDS = 45
DEMO_MAX_TEAMS = 10_000


class DemoRoutingError(RuntimeError):
    """The demo's team or policy could not be written (e.g. another team of org
    ``demo`` owns the ``networking`` domain)."""


@dataclass(frozen=True)
class DemoRouting:
    team_id: str
    team_name: str
    member_name: str
    level_seconds: int


#: Who the audit log names for the demo's routing changes.
DEMO_ACTOR = Actor(id="demo", name="escalations up --demo")


def seed_routing(*, database_url: str, level_seconds: int) -> DemoRouting:
    """Create or restore the demo team and policy in org ``demo``; the first level
    lasts ``level_seconds``. Raises ``DemoRoutingError`` with the domain error's
    detail when a rule refuses it."""
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            team_id = _put_team(session)
            put_policy(
                session=session, actor=DEMO_ACTOR, org_id=DEMO_ORG, body=_policy(level_seconds)
            )
    except DomainError as exc:
        raise DemoRoutingError(f"the demo's routing: {exc.detail} ({exc.code})") from exc
    finally:
        engine.dispose()
    return DemoRouting(team_id, DEMO_TEAM, NETWORKING_SENIOR[1], level_seconds)


def _put_team(session: Session) -> str:
    """The demo team's id, created or replaced by name."""
    member_id, member_name = NETWORKING_SENIOR
    body = TeamBody(
        name=DEMO_TEAM,
        members=[TeamMemberBody(id=member_id, name=member_name)],
        domains=[DEMO_DOMAIN],
    )
    existing = team_named(session=session, org_id=DEMO_ORG, name=DEMO_TEAM)
    if existing is None:
        # The demo's one team is not held to an org's quota of teams.
        return create_team(
            session=session, actor=DEMO_ACTOR, org_id=DEMO_ORG, body=body, max_teams=DEMO_MAX_TEAMS
        ).id
    replace_team(session=session, actor=DEMO_ACTOR, org_id=DEMO_ORG, team_id=existing, body=body)
    return existing


def _policy(level_seconds: int) -> EscalationPolicyBody:
    """Level 0: the team owning the handoff's domain (all seniors when none does);
    level 1, ``level_seconds`` later: all seniors. No repeat: it stops there."""
    return EscalationPolicyBody(
        levels=[
            PolicyLevelBody(after_seconds=level_seconds, target=LevelTarget.domain_team),
            PolicyLevelBody(after_seconds=level_seconds, target=LevelTarget.all_seniors),
        ],
        repeat=0,
    )
