"""An org's escalation policy: the built-in default, reading it, and replacing it
(levels that target a team or the domain's team, in broadcast or assign mode)."""

import functools
from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from shared import audit
from shared.audit import Actor
from shared.core.errors import Conflict, InvalidInput
from shared.core.timeutil import utcnow
from shared.routing.models import (
    EscalationLevel,
    EscalationPolicy,
    EscalationPolicyBody,
    EscalationPolicyPublic,
    LevelMode,
    LevelTarget,
    PolicyLevelPublic,
    Team,
)

# --- escalation policy -------------------------------------------------------------


def default_policy(*, claim_sla_seconds: int) -> EscalationPolicyPublic:
    """Today's behaviour: one level, all seniors, broadcast, after the claim SLA."""
    level = PolicyLevelPublic(
        after_seconds=claim_sla_seconds,
        target=LevelTarget.all_seniors,
        team_id=None,
        team_name=None,
        mode=LevelMode.broadcast,
    )
    return EscalationPolicyPublic(levels=[level], repeat=0, is_default=True, updated_at=None)


def get_policy(*, session: Session, org_id: str, claim_sla_seconds: int) -> EscalationPolicyPublic:
    """The org's policy, or ``default_policy`` when it has set none. This is what
    a new handoff should copy: a later change applies to handoffs created after it."""
    rows = session.execute(_policy_statement(), {"org_id": org_id}).all()
    if not rows:
        return default_policy(claim_sla_seconds=claim_sla_seconds)
    levels = [
        PolicyLevelPublic(
            after_seconds=row.after_seconds,
            target=LevelTarget(row.target),
            team_id=row.team_id,
            team_name=row.team_name if row.team_id else None,
            mode=LevelMode(row.mode),
        )
        for row in rows
        if row.position is not None  # a policy without levels: one row, no level
    ]
    return EscalationPolicyPublic(
        levels=levels, repeat=rows[0].repeat, is_default=False, updated_at=rows[0].updated_at
    )


@functools.cache
def _policy_statement() -> Any:
    """One round trip for the policy, its levels in order and their teams' names
    (every create reads it; built once: building costs more than running it)."""
    policies = EscalationPolicy.__table__  # type: ignore[attr-defined]
    levels = EscalationLevel.__table__  # type: ignore[attr-defined]
    teams = Team.__table__  # type: ignore[attr-defined]
    return (
        sa_select(
            policies.c.repeat,
            policies.c.updated_at,
            levels.c.position,
            levels.c.after_seconds,
            levels.c.target,
            levels.c.team_id,
            levels.c.mode,
            teams.c.name.label("team_name"),
        )
        .select_from(
            policies.outerjoin(levels, levels.c.org_id == policies.c.org_id).outerjoin(
                teams, teams.c.id == levels.c.team_id
            )
        )
        .where(policies.c.org_id == bindparam("org_id"))
        .order_by(levels.c.position)
    )


def put_policy(
    *, session: Session, actor: Actor, org_id: str, body: EscalationPolicyBody
) -> EscalationPolicyPublic:
    """Stores the whole policy, with its audit row. Raises ``InvalidInput`` (``unknown_team``, with
    ``team_id`` and ``level``) when a level names a team the org does not have,
    also one deleted concurrently (the levels' foreign key refuses it)."""
    for _ in range(2):
        try:
            return _write_policy(session, actor, org_id, body)
        except IntegrityError:
            # A concurrent first policy of this org, or a team deleted meanwhile:
            # the second attempt updates that policy, or reports the missing team.
            session.rollback()
    raise Conflict("The policy changed concurrently; retry.", code="concurrent_update")


def _write_policy(
    session: Session, actor: Actor, org_id: str, body: EscalationPolicyBody
) -> EscalationPolicyPublic:
    team_names = _named_teams(session, org_id, body)
    before = _stored_policy(session, org_id)
    now = utcnow()
    statement = select(EscalationPolicy).where(EscalationPolicy.org_id == org_id)
    policy = session.exec(
        statement.with_for_update().execution_options(populate_existing=True)
    ).first()
    if policy is None:
        policy = EscalationPolicy(org_id=org_id, repeat=body.repeat, created_at=now, updated_at=now)
        session.add(policy)
        session.flush()
    policy.repeat = body.repeat
    policy.updated_at = now
    session.execute(delete(EscalationLevel).where(col(EscalationLevel.org_id) == org_id))
    levels = [
        EscalationLevel(
            org_id=org_id,
            position=position,
            after_seconds=level.after_seconds,
            target=level.target.value,
            team_id=level.team_id,
            mode=level.mode.value,
        )
        for position, level in enumerate(body.levels)
    ]
    session.add_all(levels)
    session.flush()
    public = _policy_public(policy, levels, team_names)
    audit.record(
        session,
        org_id=org_id,
        actor=actor,
        kind="policy.updated",
        before=before,
        after=public,
    )
    session.commit()
    return public


def _stored_policy(session: Session, org_id: str) -> dict[str, Any] | None:
    """The org's stored policy as plain values (for the audit log); None: the default."""
    rows = session.execute(_policy_statement(), {"org_id": org_id}).all()
    if not rows:
        return None
    fields = ("after_seconds", "target", "team_id", "team_name", "mode")
    levels = [{name: getattr(row, name) for name in fields} for row in rows if row.target]
    return {"repeat": rows[0].repeat, "levels": levels}


def _named_teams(session: Session, org_id: str, body: EscalationPolicyBody) -> dict[str, str]:
    """Names of the teams the levels name; ``unknown_team`` for the first missing one."""
    wanted = {level.team_id for level in body.levels if level.team_id is not None}
    found = session.exec(
        select(Team).where(Team.org_id == org_id, col(Team.id).in_(sorted(wanted)))
    ).all()
    names = {team.id: team.name for team in found}
    for number, level in enumerate(body.levels, start=1):
        if level.team_id is not None and level.team_id not in names:
            raise InvalidInput(
                f"Level {number} names team {level.team_id}, which does not exist.",
                code="unknown_team",
                team_id=level.team_id,
                level=number,
            )
    return names


def _policy_public(
    policy: EscalationPolicy, levels: list[EscalationLevel], team_names: dict[str, str]
) -> EscalationPolicyPublic:
    return EscalationPolicyPublic(
        levels=[
            PolicyLevelPublic(
                after_seconds=level.after_seconds,
                target=LevelTarget(level.target),
                team_id=level.team_id,
                team_name=team_names.get(level.team_id) if level.team_id else None,
                mode=LevelMode(level.mode),
            )
            for level in levels
        ],
        repeat=policy.repeat,
        is_default=False,
        updated_at=policy.updated_at,
    )
