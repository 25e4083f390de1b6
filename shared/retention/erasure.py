"""Erasing one person of an org (a right-to-erasure request), in one transaction:
the content of every handoff they created is purged (``service.purge_content``)
and their name is replaced by ``ERASED_NAME`` wherever it is stored: handoffs
(creator, claimer, assignee), events (actor, and the copies of the handoff and
of a reassignment they carry) and team memberships; their row in the org's
people goes (they are remembered again, as anyone, if they sign in later). Their id stays, so counts
and analytics keep adding up; it is an opaque id, not a name."""

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col, or_, select

from shared import audit
from shared.auth import people
from shared.auth.tokens import Principal
from shared.core.errors import Conflict
from shared.events.models import Event
from shared.handoffs.models import Handoff
from shared.retention.service import CLOSED, purge_content
from shared.routing.models import TeamMember
from shared.slack.service import remove_person_links

ERASED_NAME = "Erased user"

#: The (id, name) field pairs a handoff, or a copy of one, names people in.
_HANDOFF_PEOPLE = (
    ("created_by_id", "created_by_name"),
    ("claimed_by_id", "claimed_by_name"),
    ("assigned_to_id", "assigned_to_name"),
)
#: The same pairs in a reassignment's data.
_REASSIGNMENT_PEOPLE = (("from_id", "from_name"), ("to_id", "to_name"))


class ErasureReport(BaseModel):
    user_id: str
    purged_handoffs: int
    renamed_handoffs: int
    renamed_events: int
    renamed_memberships: int
    removed_slack_links: int = 0


def erase_person(*, session: Session, actor: Principal, user_id: str) -> ErasureReport:
    """Erase ``user_id`` of the actor's org and commit, with its audit row. Raises ``Conflict``
    (``person_has_open_handoffs``, with their ids) while a handoff they created is
    open: cancel or resolve it first. Erasing again changes nothing more."""
    org_id = actor.org_id
    created = session.exec(
        select(Handoff).where(Handoff.org_id == org_id, Handoff.created_by_id == user_id)
    ).all()
    still_open = [handoff.id for handoff in created if handoff.status not in CLOSED]
    if still_open:
        raise Conflict(
            "Close this person's open handoffs first.",
            code="person_has_open_handoffs",
            handoff_ids=still_open,
        )
    purged = sum(
        purge_content(session=session, handoff_id=handoff.id, snapshot=handoff.snapshot)
        for handoff in created
    )
    report = ErasureReport(
        user_id=user_id,
        purged_handoffs=purged,
        renamed_handoffs=_rename_in_handoffs(session, org_id, user_id),
        renamed_events=_rename_in_events(session, org_id, user_id),
        renamed_memberships=_rename_in_teams(session, org_id, user_id),
        removed_slack_links=remove_person_links(session, org_id=org_id, user_id=user_id),
    )
    people.forget_person(session=session, org_id=org_id, person_id=user_id)
    audit.record(
        session, org_id=org_id, actor=actor, kind="person.erased", target_id=user_id, after=report
    )
    session.commit()
    return report


def _rename_in_handoffs(session: Session, org_id: str, user_id: str) -> int:
    renamed: set[str] = set()
    for id_field, name_field in _HANDOFF_PEOPLE:
        rows = session.execute(
            sa.update(Handoff)
            .where(col(Handoff.org_id) == org_id, getattr(Handoff, id_field) == user_id)
            .values({name_field: ERASED_NAME})
            .returning(col(Handoff.id))
            .execution_options(synchronize_session=False)
        )
        renamed.update(rows.scalars())
    return len(renamed)


def _rename_in_events(session: Session, org_id: str, user_id: str) -> int:
    """Events the person acted in, and every event of a handoff they were named
    in (their copies of the handoff may name them)."""
    named_in = select(Handoff.id).where(
        Handoff.org_id == org_id,
        or_(*(getattr(Handoff, id_field) == user_id for id_field, _ in _HANDOFF_PEOPLE)),
    )
    events = session.exec(
        select(Event).where(
            Event.org_id == org_id,
            or_(col(Event.actor_id) == user_id, col(Event.handoff_id).in_(named_in)),
        )
    ).all()
    renamed = 0
    for event in events:
        handoff = _renamed(event.handoff, user_id, _HANDOFF_PEOPLE)
        data = _renamed_data(event.data, user_id)
        actor_name = ERASED_NAME if event.actor_id == user_id else event.actor_name
        if (handoff, data, actor_name) != (event.handoff, event.data, event.actor_name):
            event.handoff, event.data, event.actor_name = handoff, data, actor_name
            session.add(event)
            renamed += 1
    return renamed


def _renamed_data(data: dict[str, Any] | None, user_id: str) -> dict[str, Any] | None:
    if not data or not isinstance(data.get("reassignment"), dict):
        return data
    return {**data, "reassignment": _renamed(data["reassignment"], user_id, _REASSIGNMENT_PEOPLE)}


def _renamed(
    copy: dict[str, Any], user_id: str, people: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    renamed = dict(copy)
    for id_field, name_field in people:
        if renamed.get(id_field) == user_id and name_field in renamed:
            renamed[name_field] = ERASED_NAME
    return renamed


def _rename_in_teams(session: Session, org_id: str, user_id: str) -> int:
    result = session.execute(
        sa.update(TeamMember)
        .where(col(TeamMember.org_id) == org_id, col(TeamMember.user_id) == user_id)
        .values(name=ERASED_NAME)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
