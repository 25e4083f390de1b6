"""The claim protocol (one winner, the rest get 409 naming it), release and reassign.

Concurrent claims in one process share one attempt (``claim_flights``); across
replicas an optional Redis lock leads and the database decides
(``_claim_in_database``). Each change commits with its event.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import case, func, update
from sqlmodel import Session, col

from shared.auth.tokens import Principal
from shared.core.db import rows_changed
from shared.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    handoff_not_found,
    invalid_state,
)
from shared.core.locks import ClaimLock
from shared.core.metrics import CLAIMS
from shared.core.timeutil import isoformat, utcnow
from shared.events.models import EventData, EventType, Reassignment
from shared.events.outbox import record_event
from shared.handoffs._changes import (
    check_claim_owner_or_admin,
    load_for_update,
    record_change,
    settled_if_in_time,
)
from shared.handoffs.claim_flights import ClaimFlights, Landing, Seat
from shared.handoffs.models import (
    Handoff,
    HandoffPublic,
    HandoffStatus,
    ReassignBody,
)
from shared.handoffs.queries import get_handoff
from shared.handoffs.views import handoff_public
from shared.redaction.redactor import max_length
from shared.redaction.service import RedactorCache, redactor_for
from shared.routing.assignment import PresentLookup, assign_on_level, present_at, reassignee_name
from shared.routing.escalation import start_levels

#: Redacted text is cut to what its field accepts (a marker can be longer than its secret).
_NOTE_LIMIT = max_length(ReassignBody, "note")

ClaimLockFactory = Callable[[str], ClaimLock | None]

#: The table's columns, for the reads that select plain rows (no ORM instances).
_handoffs = Handoff.__table__.c  # type: ignore[attr-defined]


# --- claim -----------------------------------------------------------------------


def claim_handoff(
    *,
    session: Session,
    principal: Principal,
    handoff_id: str,
    claim_lock: ClaimLockFactory,
    flights: ClaimFlights | None = None,
) -> HandoffPublic:
    """Claim a pending handoff for ``principal``. Exactly one concurrent caller wins.

    The Redis lock settles races quickly; the conditional update
    (``WHERE status = 'pending'``) settles them when the lock expired or Redis is
    down. Claiming your own claim again returns it. Raises ``Conflict``
    ``handoff_already_claimed`` naming the winner, or ``invalid_state``.
    With ``flights``, concurrent claims of the handoff in this process share one
    attempt (``shared.handoffs.claim_flights``).
    """
    if flights is None:
        return _claim_answer(_decide_claim(session, principal, handoff_id, claim_lock), principal)
    with flights.board((principal.org_id, handoff_id)) as seat:
        if seat.leading:
            return _lead_claim(session, principal, handoff_id, claim_lock, seat)
    assert seat.landing is not None
    if seat.landing.decided is None:
        raise handoff_not_found(handoff_id)
    return _claim_answer((seat.landing.decided, False), principal)


def _lead_claim(
    session: Session,
    principal: Principal,
    handoff_id: str,
    claim_lock: ClaimLockFactory,
    seat: Seat,
) -> HandoffPublic:
    try:
        decision = _decide_claim(session, principal, handoff_id, claim_lock, seat.cover)
    except NotFound:
        seat.land(Landing(None))
        raise
    seat.land(Landing(decision[0]))
    return _claim_answer(decision, principal)


#: Whether this caller's update won, and the handoff as decided (claimed or closed).
ClaimDecision = tuple[HandoffPublic, bool]


def _decide_claim(
    session: Session,
    principal: Principal,
    handoff_id: str,
    claim_lock: ClaimLockFactory,
    before_read: Callable[[], None] = lambda: None,
) -> ClaimDecision:
    """Read, lock, wait, update: the handoff once it is no longer pending.
    ``before_read`` is called just before each read or update that may decide."""
    before_read()
    handoff = get_handoff(session=session, org_id=principal.org_id, handoff_id=handoff_id)
    if handoff.status != HandoffStatus.pending:
        return handoff_public(handoff), False
    session.rollback()  # never hold a database transaction while waiting on the lock
    lock = claim_lock(handoff_id)
    held = lock.try_acquire() if lock is not None else None
    try:
        if held is False and lock is not None:
            lock.wait_until_released()
            before_read()
            handoff = get_handoff(session=session, org_id=principal.org_id, handoff_id=handoff_id)
            if handoff.status != HandoffStatus.pending:
                return handoff_public(handoff), False
            session.rollback()
        before_read()
        return _claim_in_database(session, principal, handoff_id)
    finally:
        if lock is not None:
            lock.release()


def _claim_in_database(session: Session, principal: Principal, handoff_id: str) -> ClaimDecision:
    now = utcnow()
    statement = (
        update(Handoff)
        .where(
            col(Handoff.id) == handoff_id,
            col(Handoff.org_id) == principal.org_id,
            col(Handoff.status) == HandoffStatus.pending.value,
        )
        .values(
            status=HandoffStatus.claimed.value,
            claimed_by_id=principal.user_id,
            claimed_by_name=principal.name,
            claimed_at=now,
            first_claimed_at=func.coalesce(Handoff.first_claimed_at, now),
            sla_settled_at=settled_if_in_time(now),
            first_claim_level=_kept_if_claimed_before(
                Handoff.first_claim_level, Handoff.escalation_level
            ),
            first_claim_team_id=_kept_if_claimed_before(
                Handoff.first_claim_team_id, Handoff.escalation_team_id
            ),
            next_escalation_at=None,  # a claim stops re-escalation, and ends the assignment
            assigned_to_id=None,
            assigned_to_name=None,
            updated_at=now,
        )
    )
    won = rows_changed(session.execute(statement)) == 1
    handoff = get_handoff(session=session, org_id=principal.org_id, handoff_id=handoff_id)
    if not won:
        session.rollback()
        if handoff.status == HandoffStatus.pending:  # released in between: caller may retry
            raise Conflict("The handoff changed concurrently; retry.", code="concurrent_update")
        return handoff_public(handoff), False
    record_event(session, handoff=handoff, type=EventType.claimed, actor=principal)
    session.commit()
    return handoff_public(handoff), True


def _kept_if_claimed_before(first_claim_column: Any, current_column: Any) -> Any:
    """SQL for a ``first_claim_*`` column on a claim: the current value on the
    first claim, kept on later ones (SET reads the row as it was before)."""
    first_claim = col(Handoff.first_claimed_at).is_(None)
    return case((first_claim, col(current_column)), else_=col(first_claim_column))


def _claim_answer(decision: ClaimDecision, principal: Principal) -> HandoffPublic:
    """The claim's answer to ``principal`` once the handoff is decided."""
    handoff, won = decision
    if won:
        CLAIMS.labels("won").inc()
        return handoff
    if handoff.status == HandoffStatus.claimed:
        if handoff.claimed_by_id == principal.user_id:
            CLAIMS.labels("repeat").inc()
            return handoff
        CLAIMS.labels("lost").inc()
        raise already_claimed(handoff)
    raise invalid_state("claim", handoff.status)


def already_claimed(handoff: HandoffPublic) -> Conflict:
    claimed_at = isoformat(handoff.claimed_at) if handoff.claimed_at else None
    return Conflict(
        f"Already claimed by {handoff.claimed_by_name}.",
        code="handoff_already_claimed",
        claimed_by_id=handoff.claimed_by_id,
        claimed_by_name=handoff.claimed_by_name,
        claimed_at=claimed_at,
    )


# --- release, resolve, cancel ----------------------------------------------------


def release_handoff(
    *,
    session: Session,
    principal: Principal,
    handoff_id: str,
    present: PresentLookup | None = None,
) -> HandoffPublic:
    """Put a claimed handoff back to pending. The claimer may release; so may an
    admin (to free a claim whose owner is away). Re-escalation starts over at
    level 0, which may assign it to one of the ``present`` other than the one
    who held the claim."""
    # Level 0's copied levels never change: who is present there is read before
    # the row is locked, so the lock never waits on Redis.
    unlocked = get_handoff(session=session, org_id=principal.org_id, handoff_id=handoff_id)
    people = present_at(unlocked, 0, present, session=session)
    handoff = load_for_update(session, principal, handoff_id)
    if handoff.status != HandoffStatus.claimed:
        raise invalid_state("release", handoff.status)
    check_claim_owner_or_admin(handoff, principal)
    released_by = handoff.claimed_by_id
    handoff.status = HandoffStatus.pending.value
    handoff.claimed_by_id = handoff.claimed_by_name = handoff.claimed_at = None
    start_levels(handoff, utcnow())
    record_change(session, handoff, EventType.released, principal)
    assign_on_level(
        session, handoff=handoff, people=people, now=handoff.updated_at, not_to=released_by
    )
    session.commit()
    return handoff_public(handoff)


def reassign_handoff(
    *,
    session: Session,
    principal: Principal,
    handoff_id: str,
    body: ReassignBody,
    present: PresentLookup | None = None,
    redactors: RedactorCache | None = None,
) -> HandoffPublic:
    """Hand a claimed handoff to another senior: it stays claimed, by ``body.to_id``
    now, and records ``handoff_reassigned``. The claimer or an admin may; 409
    ``invalid_state`` when not claimed, ``already_claimer`` when it is theirs; 422
    ``invalid_reassignee`` unless ``to_id`` is a senior or admin of the org, present
    now or known (``shared.routing.assignment.reassignee_name``).
    The note is redacted (``shared.redaction``) before it is recorded."""
    get_handoff(session=session, org_id=principal.org_id, handoff_id=handoff_id)  # 404 first
    redactor = redactor_for(session=session, org_id=principal.org_id, cache=redactors)
    note, redactions = redactor.redact(body.note, _NOTE_LIMIT)
    session.rollback()  # hold no database lock while presence is read from Redis
    to_name = reassignee_name(
        session, org_id=principal.org_id, to_id=body.to_id, to_name=body.to_name, present=present
    )
    if to_name is None:
        raise InvalidInput(
            f"{body.to_id} cannot take the claim over: only a senior or admin who is online"
            " now, or who signed in within 90 days (GET /api/v1/people), can.",
            code="invalid_reassignee",
        )
    handoff = load_for_update(session, principal, handoff_id)
    if handoff.status != HandoffStatus.claimed:
        raise invalid_state("reassign", handoff.status)
    check_claim_owner_or_admin(handoff, principal)
    if handoff.claimed_by_id == body.to_id:
        raise Conflict(
            f"The handoff is already claimed by {handoff.claimed_by_name}.", code="already_claimer"
        )
    reassignment = Reassignment(
        from_id=handoff.claimed_by_id,
        from_name=handoff.claimed_by_name,
        to_id=body.to_id,
        to_name=to_name,
        note=note,
    )
    handoff.redactions += redactions
    handoff.claimed_by_id, handoff.claimed_by_name = body.to_id, to_name
    handoff.claimed_at = utcnow()
    record_change(
        session, handoff, EventType.reassigned, principal, data=EventData(reassignment=reassignment)
    )
    session.commit()
    return handoff_public(handoff)
