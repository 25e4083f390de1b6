"""Reads: one handoff by id, and the queue's pages (filters, ``for=me``, cursors)."""

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, or_
from sqlmodel import Session, select

from shared.auth.tokens import Principal
from shared.core.db import is_uuid, load_in_org
from shared.core.errors import (
    InvalidInput,
    handoff_not_found,
)
from shared.core.models import Role
from shared.core.timeutil import as_utc, isoformat
from shared.handoffs.models import (
    PRIORITY_RANK,
    Handoff,
    HandoffPage,
    HandoffPublic,
    HandoffStatus,
)
from shared.handoffs.views import public_from_rows, public_json_from_rows, select_public
from shared.routing.models import TeamMember

#: The table's columns, for the reads that select plain rows (no ORM instances).
_handoffs = Handoff.__table__.c  # type: ignore[attr-defined]
#: Built once: building a statement (and its cache key) per request cost a get by id
#: 0.3 ms CPU; a built one's key is computed once.
_PUBLIC_BY_ID = select_public().where(
    _handoffs.id == bindparam("handoff_id"), _handoffs.org_id == bindparam("org_id")
)


# --- read ----------------------------------------------------------------------


def get_handoff(*, session: Session, org_id: str, handoff_id: str) -> Handoff:
    """The org's handoff, or ``NotFound`` (also for another org's handoff)."""
    handoff = load_in_org(session, Handoff, org_id=org_id, row_id=handoff_id)
    if handoff is None:
        raise handoff_not_found(handoff_id)
    return handoff


def get_handoff_public(*, connection: Connection, org_id: str, handoff_id: str) -> HandoffPublic:
    """The org's handoff as the API shows it, or ``NotFound`` (also for another
    org's handoff); read as one row of the columns it needs, not an ORM instance."""
    return public_from_rows(connection, _rows_by_id(connection, org_id, handoff_id))[0]


def get_handoff_json(*, connection: Connection, org_id: str, handoff_id: str) -> str:
    """:func:`get_handoff_public` as JSON text (kept per row: ``shared.handoffs.views``)."""
    return public_json_from_rows(connection, _rows_by_id(connection, org_id, handoff_id))[0]


def _rows_by_id(connection: Connection, org_id: str, handoff_id: str) -> list[Row[Any]]:
    if not is_uuid(handoff_id):
        raise handoff_not_found(handoff_id)
    rows = connection.execute(_PUBLIC_BY_ID, {"handoff_id": handoff_id, "org_id": org_id}).all()
    if not rows:
        raise handoff_not_found(handoff_id)
    return list(rows)


def list_handoffs(
    *,
    connection: Connection,
    org_id: str,
    status: HandoffStatus | None,
    domain: str | None,
    limit: int,
    cursor: str | None,
    created_by: str | None = None,
    claimed_by: str | None = None,
    assigned_to: str | None = None,
    for_principal: Principal | None = None,
) -> HandoffPage:
    """The org's handoffs in queue order (priority, then oldest first), one page;
    ``created_by`` / ``claimed_by`` / ``assigned_to`` keep those of one user id,
    ``for_principal`` those whose current level targets that caller."""
    page, next_cursor = _page(connection=connection, org_id=org_id, status=status, domain=domain,
                              limit=limit, cursor=cursor, created_by=created_by,
                              claimed_by=claimed_by, assigned_to=assigned_to,
                              for_principal=for_principal)  # fmt: skip
    return HandoffPage(items=public_from_rows(connection, page), next_cursor=next_cursor)


def list_handoffs_json(*, connection: Connection, **filters: Any) -> str:
    """:func:`list_handoffs` (same arguments) as the ``HandoffPage`` JSON text
    ``model_dump_json()`` gives: the rows' kept JSON joined."""
    page, next_cursor = _page(connection=connection, **filters)
    items = ",".join(public_json_from_rows(connection, page))
    return f'{{"items":[{items}],"next_cursor":{json.dumps(next_cursor)}}}'


def _page(
    *,
    connection: Connection,
    org_id: str,
    status: HandoffStatus | None,
    domain: str | None,
    limit: int,
    cursor: str | None,
    created_by: str | None = None,
    claimed_by: str | None = None,
    assigned_to: str | None = None,
    for_principal: Principal | None = None,
) -> tuple[list[Row[Any]], str | None]:
    """A page's rows (of ``select_public()``) and the cursor after it (None: the last)."""
    statement = select_public().where(_handoffs.org_id == org_id)
    if status is not None:
        statement = statement.where(_handoffs.status == status.value)
    if domain is not None:
        statement = statement.where(_handoffs.problem_domain == domain)
    if created_by is not None:
        statement = statement.where(_handoffs.created_by_id == created_by)
    if claimed_by is not None:
        statement = statement.where(_handoffs.claimed_by_id == claimed_by)
    if assigned_to is not None:
        statement = statement.where(_handoffs.assigned_to_id == assigned_to)
    if for_principal is not None:
        statement = statement.where(_targets(for_principal))
    if cursor is not None:
        statement = statement.where(_after_cursor(*_decode_cursor(cursor)))
    statement = statement.order_by(
        _handoffs.priority_rank, _handoffs.created_at, _handoffs.id
    ).limit(limit + 1)
    rows = connection.execute(statement).all()
    page, more = list(rows[:limit]), len(rows) > limit
    return page, _encode_cursor(page[-1]) if more else None


def _targets(principal: Principal) -> Any:
    """SQL: the handoff's current level targets ``principal``: a team they are a
    member of, or all seniors when they are a senior or admin. A team with no
    members now (emptied, or deleted since the handoff copied its levels)
    reaches nobody, so its handoffs count as all seniors' rather than no one's."""
    members = TeamMember.__table__.c  # type: ignore[attr-defined]
    my_teams = select(members.team_id).where(
        members.org_id == principal.org_id, members.user_id == principal.user_id
    )
    team = _handoffs.escalation_team_id
    if principal.role not in (Role.senior, Role.admin):
        return team.in_(my_teams)
    has_members = (
        select(members.user_id)
        .where(members.org_id == principal.org_id, members.team_id == team)
        .exists()
    )
    return or_(team.is_(None), team.in_(my_teams), ~has_members)


def _after_cursor(rank: int, created_at: datetime, handoff_id: str) -> Any:
    return or_(
        _handoffs.priority_rank > rank,
        and_(_handoffs.priority_rank == rank, _handoffs.created_at > created_at),
        and_(
            _handoffs.priority_rank == rank,
            _handoffs.created_at == created_at,
            _handoffs.id > handoff_id,
        ),
    )


def _encode_cursor(handoff: Row[Any]) -> str:
    position = [handoff.priority_rank, isoformat(handoff.created_at), handoff.id]
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, datetime, str]:
    try:
        rank, created_at, handoff_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        position = (int(rank), as_utc(datetime.fromisoformat(created_at)), str(handoff_id))
        if position[0] not in PRIORITY_RANK.values() or not is_uuid(position[2]):
            raise ValueError("not a queue position")
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeError) as exc:
        raise InvalidInput(
            "The cursor is not one this API returned.", code="invalid_cursor"
        ) from exc
    return position
