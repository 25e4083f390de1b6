"""Teams and the org's escalation policy: who a handoff can be routed to.

Functions take keyword arguments only, commit their own transaction and raise
``shared.core.errors`` exceptions. Uniqueness (a team name, a domain's owner) and
references (a level's team) are settled by the database's constraints, so two
replicas racing cannot both win; the checks made first only give the loser a
precise answer (which team has the name or the domain).
"""

import base64
import binascii
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import and_, delete, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from shared import audit
from shared.audit import Actor
from shared.auth.tokens import Principal
from shared.core.db import load_in_org
from shared.core.errors import Conflict, InvalidInput, NotFound
from shared.core.timeutil import utcnow
from shared.routing.models import (
    EscalationLevel,
    MePublic,
    Team,
    TeamBody,
    TeamDomain,
    TeamMember,
    TeamMemberPublic,
    TeamPage,
    TeamPublic,
    TeamRef,
    TeamSummary,
)

T = TypeVar("T")


# --- me ----------------------------------------------------------------------------


def describe_me(*, session: Session, principal: Principal) -> MePublic:
    """The caller as the token says, with the teams (of the caller's org) listing
    the caller's id among their members, by name."""
    statement = (
        select(Team)
        .join(TeamMember, col(TeamMember.team_id) == Team.id)
        .where(TeamMember.org_id == principal.org_id, TeamMember.user_id == principal.user_id)
        .order_by(col(Team.name), col(Team.id))
    )
    teams = [TeamRef(id=team.id, name=team.name) for team in session.exec(statement)]
    return MePublic(
        id=principal.user_id,
        name=principal.name,
        role=principal.role,
        org_id=principal.org_id,
        teams=teams,
    )


# --- teams: read -------------------------------------------------------------------


def list_teams(
    *, session: Session, org_id: str, limit: int, cursor: str | None, members: bool = True
) -> TeamPage:
    """The org's teams by name (then id), ``limit`` per page after ``cursor`` (a
    ``next_cursor`` this returned; ``InvalidInput`` ``invalid_cursor`` otherwise).
    Whole teams (members and domains in the order given), or with ``members``
    false ``TeamSummary`` items: the member count instead of the members."""
    statement = select(Team).where(Team.org_id == org_id)
    if cursor is not None:
        name, team_id = _decode_cursor(cursor)
        statement = statement.where(
            or_(col(Team.name) > name, and_(col(Team.name) == name, col(Team.id) > team_id))
        )
    rows = session.exec(statement.order_by(col(Team.name), col(Team.id)).limit(limit + 1)).all()
    teams, more = rows[:limit], len(rows) > limit
    ids = [team.id for team in teams]
    domains: defaultdict[str, list[TeamDomain]] = defaultdict(list)
    for domain in session.exec(
        select(TeamDomain)
        .where(TeamDomain.org_id == org_id, col(TeamDomain.team_id).in_(ids))
        .order_by(col(TeamDomain.position))
    ):
        domains[domain.team_id].append(domain)
    items: list[TeamPublic] | list[TeamSummary]
    if members:
        listed = _members_of(session, org_id, ids)
        items = [_public(team, listed[team.id], domains[team.id]) for team in teams]
    else:
        counts = _member_counts(session, org_id, ids)
        items = [_summary(team, counts.get(team.id, 0), domains[team.id]) for team in teams]
    return TeamPage(items=items, next_cursor=_encode_cursor(teams[-1]) if more else None)


def _members_of(session: Session, org_id: str, team_ids: list[str]) -> dict[str, list[TeamMember]]:
    members: defaultdict[str, list[TeamMember]] = defaultdict(list)
    for member in session.exec(
        select(TeamMember)
        .where(TeamMember.org_id == org_id, col(TeamMember.team_id).in_(team_ids))
        .order_by(col(TeamMember.position))
    ):
        members[member.team_id].append(member)
    return members


def _member_counts(session: Session, org_id: str, team_ids: list[str]) -> dict[str, int]:
    counts = session.exec(
        select(TeamMember.team_id, func.count())
        .where(TeamMember.org_id == org_id, col(TeamMember.team_id).in_(team_ids))
        .group_by(col(TeamMember.team_id))
    )
    return {team_id: count for team_id, count in counts}


def _encode_cursor(team: Team) -> str:
    return base64.urlsafe_b64encode(json.dumps([team.name, team.id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        name, team_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(name, str) or not isinstance(team_id, str) or "\x00" in name + team_id:
            raise ValueError("not a team position")
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise InvalidInput(
            "The cursor is not one this API returned.", code="invalid_cursor"
        ) from exc
    return name, team_id


def team_named(*, session: Session, org_id: str, name: str) -> str | None:
    """The id of the org's team called ``name``, or None."""
    return session.exec(select(Team.id).where(Team.org_id == org_id, Team.name == name)).first()


def get_team(*, session: Session, org_id: str, team_id: str) -> TeamPublic:
    """The org's team, or ``NotFound`` (``team_not_found``, also for another org's)."""
    team = _load_or_404(session, org_id, team_id)
    return _public(team, _members(session, team.id), _domains(session, team.id))


# --- teams: write ------------------------------------------------------------------


def create_team(
    *, session: Session, actor: Actor, org_id: str, body: TeamBody, max_teams: int
) -> TeamPublic:
    """Creates the team with its audit row. Raises ``Conflict``:
    ``team_limit_reached`` (with ``limit``) when the org has ``max_teams``
    already, ``team_name_taken`` (with ``team_id``), or ``domain_taken`` (with
    ``domain``, ``team_id``, ``team_name`` of its owner).
    The limit is a quota, counted before the insert: creates racing on several
    replicas may pass it by the number in flight."""
    _refuse_over_limit(session, org_id, max_teams)
    _refuse_taken(session, org_id, body, team_id=None)
    now = utcnow()
    team = Team(
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=body.name,
        slack_channel=body.slack_channel,
        created_at=now,
        updated_at=now,
    )

    def write() -> TeamPublic:
        session.add(team)
        session.flush()  # the team's row before the rows that reference it
        public = _write_children(session, team, body)
        audit.record(
            session,
            org_id=org_id,
            actor=actor,
            kind="team.created",
            target_id=team.id,
            after=public,
        )
        return public

    return _commit_or_explain(session, write, lambda: _refuse_taken(session, org_id, body, None))


def replace_team(
    *, session: Session, actor: Actor, org_id: str, team_id: str, body: TeamBody
) -> TeamPublic:
    """Replaces name, members, domains and Slack channel at once, with its audit row.
    Raises ``NotFound`` (``team_not_found``) and the conflicts of ``create_team``."""
    team = _load_or_404(session, org_id, team_id, for_update=True)
    _refuse_taken(session, org_id, body, team_id=team.id)
    before = _public(team, _members(session, team.id), _domains(session, team.id))

    def write() -> TeamPublic:
        team.name = body.name
        team.slack_channel = body.slack_channel
        team.updated_at = utcnow()
        session.execute(delete(TeamMember).where(col(TeamMember.team_id) == team.id))
        session.execute(delete(TeamDomain).where(col(TeamDomain.team_id) == team.id))
        after = _write_children(session, team, body)
        audit.record(
            session,
            org_id=org_id,
            actor=actor,
            kind="team.replaced",
            target_id=team.id,
            before=before,
            after=after,
        )
        return after

    def explain() -> None:
        _load_or_404(session, org_id, team_id)
        _refuse_taken(session, org_id, body, team_id)

    return _commit_or_explain(session, write, explain)


def delete_team(*, session: Session, actor: Actor, org_id: str, team_id: str) -> None:
    """Deletes the team with its members and domains, with its audit row. Raises ``NotFound``
    (``team_not_found``) and ``Conflict`` (``team_in_use``, with ``levels``: the
    1-based policy levels naming it), which the levels' foreign key also enforces
    against a concurrent policy change."""
    team = _load_or_404(session, org_id, team_id, for_update=True)
    _refuse_in_use(session, org_id, team)
    before = _public(team, _members(session, team.id), _domains(session, team.id))

    def write() -> None:
        session.execute(delete(Team).where(col(Team.id) == team.id, col(Team.org_id) == org_id))
        audit.record(
            session,
            org_id=org_id,
            actor=actor,
            kind="team.deleted",
            target_id=team.id,
            before=before,
        )

    _commit_or_explain(session, write, lambda: _refuse_in_use(session, org_id, team))


def _refuse_over_limit(session: Session, org_id: str, max_teams: int) -> None:
    count = session.exec(select(func.count()).select_from(Team).where(Team.org_id == org_id)).one()
    if count >= max_teams:
        raise Conflict(
            f"The org has {count} teams, the most it may have ({max_teams});"
            " delete one or merge teams first.",
            code="team_limit_reached",
            limit=max_teams,
        )


def _write_children(session: Session, team: Team, body: TeamBody) -> TeamPublic:
    members = [
        TeamMember(
            team_id=team.id, org_id=team.org_id, user_id=member.id, name=member.name, position=index
        )
        for index, member in enumerate(body.members)
    ]
    domains = [
        TeamDomain(org_id=team.org_id, domain=domain, team_id=team.id, position=index)
        for index, domain in enumerate(body.domains)
    ]
    session.add_all([*members, *domains])
    session.flush()  # the name and domain keys are checked here
    return _public(team, members, domains)


def _refuse_taken(session: Session, org_id: str, body: TeamBody, team_id: str | None) -> None:
    same_name = select(Team).where(Team.org_id == org_id, Team.name == body.name)
    if team_id is not None:
        same_name = same_name.where(Team.id != team_id)
    holder = session.exec(same_name).first()
    if holder is not None:
        raise Conflict(
            f"A team named {body.name!r} exists.", code="team_name_taken", team_id=holder.id
        )
    if not body.domains:
        return
    owned = (
        select(TeamDomain, Team)
        .join(Team, col(Team.id) == TeamDomain.team_id)
        .where(TeamDomain.org_id == org_id, col(TeamDomain.domain).in_(body.domains))
        .order_by(col(TeamDomain.domain))
    )
    if team_id is not None:
        owned = owned.where(TeamDomain.team_id != team_id)
    taken = session.exec(owned).first()
    if taken is not None:
        domain, owner = taken
        raise Conflict(
            f"Domain {domain.domain!r} belongs to team {owner.name!r}.",
            code="domain_taken",
            domain=domain.domain,
            team_id=owner.id,
            team_name=owner.name,
        )


def _refuse_in_use(session: Session, org_id: str, team: Team) -> None:
    positions = session.exec(
        select(EscalationLevel.position)
        .where(EscalationLevel.org_id == org_id, EscalationLevel.team_id == team.id)
        .order_by(col(EscalationLevel.position))
    ).all()
    if positions:
        levels = [position + 1 for position in positions]
        raise Conflict(
            f"Team {team.name!r} is named by the escalation policy (levels {levels}); "
            "change the policy first.",
            code="team_in_use",
            levels=levels,
        )


def _commit_or_explain(session: Session, write: Callable[[], T], explain: Callable[[], None]) -> T:
    """Runs ``write`` and commits. When a constraint refuses it (a concurrent
    request won), rolls back and runs ``explain``, which raises the precise error
    now visible; failing that, ``Conflict`` (``concurrent_update``)."""
    try:
        result = write()
        session.commit()
    except IntegrityError:
        session.rollback()
        explain()
        raise Conflict("The team changed concurrently; retry.", code="concurrent_update") from None
    return result


# --- teams: helpers ----------------------------------------------------------------


def _load_or_404(session: Session, org_id: str, team_id: str, *, for_update: bool = False) -> Team:
    team = load_in_org(session, Team, org_id=org_id, row_id=team_id, for_update=for_update)
    if team is None:
        raise NotFound(f"Team {team_id} not found.", code="team_not_found")
    return team


def _members(session: Session, team_id: str) -> list[TeamMember]:
    statement = select(TeamMember).where(TeamMember.team_id == team_id)
    return list(session.exec(statement.order_by(col(TeamMember.position))))


def _domains(session: Session, team_id: str) -> list[TeamDomain]:
    statement = select(TeamDomain).where(TeamDomain.team_id == team_id)
    return list(session.exec(statement.order_by(col(TeamDomain.position))))


def _summary(team: Team, member_count: int, domains: list[TeamDomain]) -> TeamSummary:
    return TeamSummary(
        id=team.id,
        name=team.name,
        member_count=member_count,
        domains=[domain.domain for domain in domains],
        slack_channel=team.slack_channel,
        created_at=team.created_at,
        updated_at=team.updated_at,
    )


def _public(team: Team, members: list[TeamMember], domains: list[TeamDomain]) -> TeamPublic:
    return TeamPublic(
        id=team.id,
        name=team.name,
        members=[TeamMemberPublic(id=member.user_id, name=member.name) for member in members],
        domains=[domain.domain for domain in domains],
        slack_channel=team.slack_channel,
        created_at=team.created_at,
        updated_at=team.updated_at,
    )
