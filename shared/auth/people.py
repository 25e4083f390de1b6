"""The org's people: everyone who authenticated, however (a service token, the
stream cookie, and whatever else resolves a caller), remembered with the id,
name and role their last credential carried and when they were last seen.
Reassign reads it to know who is a senior while offline; ``GET /people`` lists
it for the console and for admins.

Writing is throttled in the process, not per request: ``PeopleRegistry.seen``
writes a person at most once per ``write_seconds`` (and at once when their name
or role changed, so a promotion counts from the next request). The request path
costs a dictionary lookup; each replica writes each active person about once per
interval. ``last_seen_at`` may therefore lag by that interval.
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from shared.auth.models import KnownPerson
from shared.auth.tokens import Principal
from shared.core.db import dialect_insert, rows_changed
from shared.core.models import Role, UtcTime
from shared.core.timeutil import utcnow
from shared.routing.models import Team, TeamMember, TeamRef

log = logging.getLogger(__name__)

#: ``GET /people`` and reassign know those seen within this.
LISTED_FOR = timedelta(days=90)
#: Roles that can work a claim: reassign accepts only these.
CLAIMING_ROLES = (Role.senior, Role.admin)

_PEOPLE = KnownPerson.__table__  # type: ignore[attr-defined]


class PersonPublic(BaseModel):
    id: str
    name: str
    role: Role
    last_seen_at: UtcTime
    teams: list[TeamRef]


class PeopleList(BaseModel):
    items: list[PersonPublic]


class PeopleRegistry:
    """Records callers in ``people``, throttled per (org, id) in this process.

    Thread-safe: ``seen`` runs on the request threads. At most ``max_remembered``
    writes are remembered; past that the oldest is forgotten (that person is
    written again the next time they are seen)."""

    def __init__(
        self,
        engine: Engine,
        *,
        write_seconds: float,
        max_remembered: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.write_seconds = write_seconds
        self.max_remembered = max_remembered
        self.clock = clock
        #: (org, id) → the (name, role) this process last wrote and when (``clock``),
        #: oldest first.
        self._written: dict[tuple[str, str], tuple[tuple[str, str], float]] = {}
        self._lock = threading.Lock()

    def seen(self, principal: Principal) -> None:
        """Remember ``principal`` unless this process wrote the same name and role
        for them less than ``write_seconds`` ago. Blocking (one upsert when it
        writes). A database error is logged and not raised: being remembered is
        not a reason to refuse a request (the next one tries again)."""
        key = (principal.org_id, principal.user_id)
        said = (principal.name, principal.role.value)
        now = self.clock()
        with self._lock:
            last = self._written.get(key)
        if last is not None and last[0] == said and now - last[1] < self.write_seconds:
            return
        try:
            record_seen(self.engine, principal=principal, at=utcnow())
        except SQLAlchemyError as exc:
            # The class only: the error's text carries the statement and its parameters.
            log.warning("could not record a person of org %s as seen: %s", principal.org_id,
                        type(exc).__name__)  # fmt: skip
            return
        with self._lock:
            self._written.pop(key, None)  # re-inserted last: the dict is oldest-first
            self._written[key] = (said, now)
            while len(self._written) > self.max_remembered:
                del self._written[next(iter(self._written))]


def record_seen(engine: Engine, *, principal: Principal, at: datetime) -> None:
    """Upsert the person ``principal`` names: name, role and ``last_seen_at`` from
    this call, ``first_seen_at`` kept. Commits (its own transaction)."""
    insert = dialect_insert(engine)(_PEOPLE).values(
        org_id=principal.org_id,
        id=principal.user_id,
        name=principal.name,
        role=principal.role.value,
        first_seen_at=at,
        last_seen_at=at,
    )
    excluded = insert.excluded
    upsert = insert.on_conflict_do_update(
        index_elements=["org_id", "id"],
        set_={"name": excluded.name, "role": excluded.role, "last_seen_at": excluded.last_seen_at},
    )
    with engine.begin() as connection:
        connection.execute(upsert)


def list_people(*, session: Session, org_id: str) -> PeopleList:
    """The org's people seen within ``LISTED_FOR``, by name (then id), each with
    the teams (of this org) that list them, by team name."""
    since = utcnow() - LISTED_FOR
    people = session.scalars(
        select(KnownPerson)
        .where(col(KnownPerson.org_id) == org_id, col(KnownPerson.last_seen_at) >= since)
        .order_by(col(KnownPerson.name), col(KnownPerson.id))
    ).all()
    teams: dict[str, list[TeamRef]] = {}
    memberships = session.execute(
        select(col(TeamMember.user_id), col(Team.id), col(Team.name))
        .join(Team, (col(Team.org_id) == TeamMember.org_id) & (col(Team.id) == TeamMember.team_id))
        .join(
            KnownPerson,
            (col(KnownPerson.org_id) == TeamMember.org_id)
            & (col(KnownPerson.id) == TeamMember.user_id),
        )
        .where(col(TeamMember.org_id) == org_id, col(KnownPerson.last_seen_at) >= since)
        .order_by(col(Team.name), col(Team.id))
    )
    for user_id, team_id, team_name in memberships:
        teams.setdefault(user_id, []).append(TeamRef(id=team_id, name=team_name))
    return PeopleList(
        items=[
            PersonPublic(
                id=person.id,
                name=person.name,
                role=Role(person.role),
                last_seen_at=person.last_seen_at,
                teams=teams.get(person.id, []),
            )
            for person in people
        ]
    )


def known_person(*, session: Session, org_id: str, person_id: str) -> KnownPerson | None:
    """``person_id`` as the org knows them (seen within ``LISTED_FOR``), or None."""
    return session.scalars(
        select(KnownPerson).where(
            col(KnownPerson.org_id) == org_id,
            col(KnownPerson.id) == person_id,
            col(KnownPerson.last_seen_at) >= utcnow() - LISTED_FOR,
        )
    ).first()


def forget_person(*, session: Session, org_id: str, person_id: str) -> int:
    """Delete ``person_id``'s row of the org (an erasure); the caller commits.
    Returns the rows deleted (0 or 1). They are remembered again, without what
    was erased, if they authenticate later."""
    result = session.execute(
        delete(KnownPerson).where(
            col(KnownPerson.org_id) == org_id, col(KnownPerson.id) == person_id
        )
    )
    return rows_changed(result)
