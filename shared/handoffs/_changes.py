"""What the claim and lifecycle changes share: loading for update, the claimer
check, the SLA settlement and writing a change with its event."""

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case
from sqlmodel import Session, col

from shared.auth.tokens import Principal
from shared.core.db import load_in_org
from shared.core.errors import (
    Forbidden,
    handoff_not_found,
)
from shared.core.timeutil import as_utc, utcnow
from shared.events.models import EventData, EventType
from shared.events.outbox import record_event
from shared.handoffs.models import (
    Handoff,
    HandoffPublic,
)
from shared.handoffs.views import handoff_public

#: The table's columns, for the reads that select plain rows (no ORM instances).
_handoffs = Handoff.__table__.c  # type: ignore[attr-defined]


def settled_if_in_time(now: datetime) -> Any:
    """SQL for ``sla_settled_at`` on a claim: settled now if this is the first
    claim and it beat the deadline; otherwise unchanged (the sweep decides)."""
    in_time = and_(
        col(Handoff.sla_settled_at).is_(None),
        col(Handoff.first_claimed_at).is_(None),
        col(Handoff.claim_deadline_at) >= now,
    )
    return case((in_time, now), else_=col(Handoff.sla_settled_at))


def before_deadline(handoff: Handoff, moment: datetime) -> bool:
    deadline = handoff.claim_deadline_at
    return deadline is not None and moment <= as_utc(deadline)


def load_for_update(session: Session, principal: Principal, handoff_id: str) -> Handoff:
    handoff = load_in_org(
        session, Handoff, org_id=principal.org_id, row_id=handoff_id, for_update=True
    )
    if handoff is None:
        raise handoff_not_found(handoff_id)
    return handoff


def not_claim_owner(handoff: Handoff) -> Forbidden:
    return Forbidden(
        f"This handoff is claimed by {handoff.claimed_by_name}, not by you.",
        code="not_claim_owner",
    )


def check_claim_owner_or_admin(handoff: Handoff, principal: Principal) -> None:
    if handoff.claimed_by_id != principal.user_id and not principal.is_admin:
        raise not_claim_owner(handoff)


def record_change(
    session: Session,
    handoff: Handoff,
    event_type: EventType,
    principal: Principal,
    data: EventData | None = None,
) -> None:
    """Write the change and its event in the caller's transaction. The event reaches
    Redis after the commit: ``session.commit()`` runs the outbox's ``after_commit``
    hook (``shared/events/outbox.py``), which hands it to the relay."""
    handoff.updated_at = utcnow()
    session.add(handoff)
    session.flush()
    record_event(session, handoff=handoff, type=event_type, actor=principal, data=data)


def commit_change(
    session: Session, handoff: Handoff, event_type: EventType, principal: Principal
) -> HandoffPublic:
    record_change(session, handoff, event_type, principal)
    session.commit()
    return handoff_public(handoff)
