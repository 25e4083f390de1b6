"""Reads: one handoff by id, and the queue's pages (filters, ``for=me``, cursors)."""

import base64
import binascii
import functools
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
    params: dict[str, Any] = {"org_id": org_id}
    filters = {
        "status": status.value if status is not None else None,
        "domain": domain,
        "created_by": created_by,
        "claimed_by": claimed_by,
        "assigned_to": assigned_to,
    }
    params.update((name, value) for name, value in filters.items() if value is not None)
    targets = None
    if for_principal is not None:
        params["me"] = for_principal.user_id
        targets = "seniors" if for_principal.role in (Role.senior, Role.admin) else "teams"
    if cursor is not None:
        params["rank"], params["created_at"], params["after_id"] = _decode_cursor(cursor)
    shape = (tuple(sorted(params)), targets, limit)
    rows = connection.execute(_page_statement(*shape), params).all()
    page, more = list(rows[:limit]), len(rows) > limit
    return page, _encode_cursor(page[-1]) if more else None


#: Column of each equality filter of a page.
_FILTER_COLUMNS = {
    "org_id": _handoffs.org_id,
    "status": _handoffs.status,
    "domain": _handoffs.problem_domain,
    "created_by": _handoffs.created_by_id,
    "claimed_by": _handoffs.claimed_by_id,
    "assigned_to": _handoffs.assigned_to_id,
}


@functools.lru_cache(maxsize=512)
def _page_statement(names: tuple[str, ...], targets: str | None, limit: int) -> Any:
    """The page query of one shape (which filters, ``for=me`` of a senior or not,
    a cursor or not, the limit), its values bound by name: built once per shape
    (building one and its cache key per request cost a page ~0.2 ms CPU)."""
    statement = select_public()
    for name in names:
        if name in _FILTER_COLUMNS:
            statement = statement.where(_FILTER_COLUMNS[name] == bindparam(name))
    if targets is not None:
        statement = statement.where(_targets(seniors=targets == "seniors"))
    if "rank" in names:
        statement = statement.where(_after_cursor())
    return statement.order_by(_handoffs.priority_rank, _handoffs.created_at, _handoffs.id).limit(
        limit + 1
    )


def _targets(*, seniors: bool) -> Any:
    """SQL: the handoff's current level targets the caller (``:org_id``, ``:me``):
    a team they are a member of, or all seniors when they are a senior or admin
    (``seniors``). A team with no members now (emptied, or deleted since the
    handoff copied its levels) reaches nobody, so its handoffs count as all
    seniors' rather than no one's."""
    members = TeamMember.__table__.c  # type: ignore[attr-defined]
    my_teams = select(members.team_id).where(
        members.org_id == bindparam("org_id"), members.user_id == bindparam("me")
    )
    team = _handoffs.escalation_team_id
    if not seniors:
        return team.in_(my_teams)
    has_members = (
        select(members.user_id)
        .where(members.org_id == bindparam("org_id"), members.team_id == team)
        .exists()
    )
    return or_(team.is_(None), team.in_(my_teams), ~has_members)


def _after_cursor() -> Any:
    """SQL: after the cursor's position (``:rank``, ``:created_at``, ``:after_id``)."""
    rank: Any = bindparam("rank")
    created_at: Any = bindparam("created_at")
    return or_(
        _handoffs.priority_rank > rank,
        and_(_handoffs.priority_rank == rank, _handoffs.created_at > created_at),
        and_(
            _handoffs.priority_rank == rank,
            _handoffs.created_at == created_at,
            _handoffs.id > bindparam("after_id"),
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
