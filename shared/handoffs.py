"""The handoff lifecycle: create, list, get, claim, release, resolve, cancel.

Each function commits its own transaction, and each state change writes its
event (``shared.outbox.record_event``) in that same transaction. Functions take
keyword arguments only and raise ``shared.errors`` exceptions.
"""

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, case, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from shared.assignment import PresentLookup, assign_on_level, present_at, reassignee_name
from shared.auth import Principal
from shared.claim_flights import ClaimFlights, Landing, Seat
from shared.db import is_uuid, load_in_org, rows_changed
from shared.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    handoff_not_found,
    invalid_state,
)
from shared.escalation import Plan, plan_levels, start_levels
from shared.handoff_views import handoff_public, public_from_rows, select_public
from shared.locks import ClaimLock
from shared.metrics import CLAIMS
from shared.models import (
    OPEN_STATUSES,
    PRIORITY_RANK,
    EventType,
    Handoff,
    HandoffCreate,
    HandoffPage,
    HandoffPublic,
    HandoffStatus,
    IdempotencyRecord,
    ReassignBody,
    ResolveBody,
    Role,
    TeamMember,
)
from shared.outbox import record_event
from shared.redaction.redactor import max_length, redact_create
from shared.redaction.service import RedactorCache, redactor_for
from shared.timeutil import as_utc, isoformat, utcnow

MAX_IDEMPOTENCY_KEY_LENGTH = 255
#: Redacted text is cut to what its field accepts (a marker can be longer than its secret).
_NOTE_LIMIT = max_length(ReassignBody, "note")
_RESOLUTION_LIMIT = max_length(ResolveBody, "resolution_notes")

ClaimLockFactory = Callable[[str], ClaimLock | None]

#: The table's columns, for the reads that select plain rows (no ORM instances).
_handoffs = Handoff.__table__.c  # type: ignore[attr-defined]
#: Built once: building a statement (and its cache key) per request cost a get by id
#: 0.3 ms CPU; a built one's key is computed once.
_PUBLIC_BY_ID = select_public().where(
    _handoffs.id == bindparam("handoff_id"), _handoffs.org_id == bindparam("org_id")
)


# --- create --------------------------------------------------------------------


def create_handoff(
    *,
    session: Session,
    principal: Principal,
    body: HandoffCreate,
    claim_sla_seconds: int,
    idempotency_key: str | None = None,
    present: PresentLookup | None = None,
    redactors: RedactorCache | None = None,
) -> tuple[HandoffPublic, bool]:
    """Create a pending handoff and its ``handoff_created`` event (then, when its
    first level assigns, ``handoff_assigned`` to one of the ``present``). Its
    text is redacted first (``shared.redaction``; the org's redactor from
    ``redactors``, or read now), so no secret is stored or sent.

    Returns the handoff and whether it was created now (False: the first
    response to the same ``Idempotency-Key``). Raises ``Conflict``
    (``session_already_escalated``) while the session has an open handoff.
    """
    # Of the body as sent: a retry matches its first try even if the org's
    # patterns changed in between (the hash is one-way; no secret is readable from it).
    request_hash = _request_hash(body)
    if idempotency_key is not None:
        _check_idempotency_key(idempotency_key)
    redactor = redactor_for(session=session, org_id=principal.org_id, cache=redactors)
    body, redactions = redact_create(body, redactor)
    # No read for a replay or an open handoff of the session first: the flush's
    # unique indexes decide both, and the IntegrityError path answers them.
    plan = plan_levels(
        session=session,
        org_id=principal.org_id,
        problem_domain=body.snapshot.problem_domain,
        claim_sla_seconds=claim_sla_seconds,
    )
    handoff = _new_handoff(principal, body, claim_sla_seconds, plan, redactions)
    people = present_at(handoff, 0, present, session=session)
    session.add(handoff)
    public = handoff_public(handoff)
    if idempotency_key is not None:
        session.add(_idempotency_record(principal, idempotency_key, request_hash, public))
    try:
        session.flush()  # the open-session index and the idempotency key are checked here
    except IntegrityError:
        # A replay, an open handoff of the session, or a concurrent create: say which.
        session.rollback()
        return _after_create_race(session, principal, body, idempotency_key, request_hash)
    record_event(session, handoff=handoff, type=EventType.created, actor=principal)
    if assign_on_level(session, handoff=handoff, people=people, now=handoff.created_at):
        public = handoff_public(handoff)
        if idempotency_key is not None:  # a replay answers what this answer says
            _refresh_idempotency_record(session, principal, idempotency_key, public)
    session.commit()
    return public, True


def _new_handoff(
    principal: Principal,
    body: HandoffCreate,
    claim_sla_seconds: int,
    plan: Plan,
    redactions: int = 0,
) -> Handoff:
    now = utcnow()
    handoff = Handoff(
        id=str(uuid.uuid4()),
        org_id=principal.org_id,
        session_id=body.session_id,
        status=HandoffStatus.pending.value,
        priority=body.priority.value,
        priority_rank=PRIORITY_RANK[body.priority],
        problem_domain=body.snapshot.problem_domain,
        created_by_id=principal.user_id,
        created_by_name=principal.name,
        created_at=now,
        updated_at=now,
        engineer_notes=body.engineer_notes,
        snapshot=body.snapshot.model_dump(mode="json"),
        claim_deadline_at=now + timedelta(seconds=claim_sla_seconds),
        escalation_levels=plan.levels,
        escalation_repeat=plan.repeat,
        redactions=redactions,
    )
    start_levels(handoff, now)
    return handoff


def _refuse_second_open_handoff(session: Session, org_id: str, session_id: str) -> None:
    statement = select(Handoff).where(
        Handoff.org_id == org_id,
        Handoff.session_id == session_id,
        col(Handoff.status).in_(OPEN_STATUSES),
    )
    existing = session.exec(statement).first()
    if existing is not None:
        raise Conflict(
            f"Session {session_id} already has an open handoff.",
            code="session_already_escalated",
            handoff_id=existing.id,
        )


def _after_create_race(
    session: Session,
    principal: Principal,
    body: HandoffCreate,
    idempotency_key: str | None,
    request_hash: str,
) -> tuple[HandoffPublic, bool]:
    if idempotency_key is not None:
        replay = _idempotent_replay(session, principal, idempotency_key, request_hash)
        if replay is not None:
            return replay, False
    _refuse_second_open_handoff(session, principal.org_id, body.session_id)
    raise Conflict("The handoff changed concurrently; retry.", code="concurrent_update")


def _request_hash(body: HandoffCreate) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def _check_idempotency_key(key: str) -> None:
    # No NUL: PostgreSQL text cannot hold it, and the key is looked up and stored.
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or "\x00" in key:
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters, without NUL.",
            code="invalid_idempotency_key",
        )


def _idempotent_replay(
    session: Session, principal: Principal, key: str, request_hash: str
) -> HandoffPublic | None:
    record = session.get(IdempotencyRecord, (principal.org_id, principal.user_id, key))
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise InvalidInput(
            "This Idempotency-Key was already used with a different request body.",
            code="idempotency_key_reused",
        )
    return HandoffPublic.model_validate(record.response)


def _refresh_idempotency_record(
    session: Session, principal: Principal, key: str, public: HandoffPublic
) -> None:
    record = session.get(IdempotencyRecord, (principal.org_id, principal.user_id, key))
    if record is not None:
        record.response = public.model_dump(mode="json")
        session.add(record)


def _idempotency_record(
    principal: Principal, key: str, request_hash: str, public: HandoffPublic
) -> IdempotencyRecord:
    return IdempotencyRecord(
        org_id=principal.org_id,
        user_id=principal.user_id,
        key=key,
        request_hash=request_hash,
        handoff_id=public.id,
        response=public.model_dump(mode="json"),
        created_at=utcnow(),
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
    if not is_uuid(handoff_id):
        raise handoff_not_found(handoff_id)
    rows = connection.execute(_PUBLIC_BY_ID, {"handoff_id": handoff_id, "org_id": org_id}).all()
    if not rows:
        raise handoff_not_found(handoff_id)
    return public_from_rows(connection, rows)[0]


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
    page, more = rows[:limit], len(rows) > limit
    return HandoffPage(
        items=public_from_rows(connection, page),
        next_cursor=_encode_cursor(page[-1]) if more else None,
    )


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
    attempt (``shared.claim_flights``).
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
            sla_settled_at=_settled_if_in_time(now),
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
    handoff = _load_for_update(session, principal, handoff_id)
    if handoff.status != HandoffStatus.claimed:
        raise invalid_state("release", handoff.status)
    _check_claim_owner_or_admin(handoff, principal)
    released_by = handoff.claimed_by_id
    handoff.status = HandoffStatus.pending.value
    handoff.claimed_by_id = handoff.claimed_by_name = handoff.claimed_at = None
    start_levels(handoff, utcnow())
    _record_change(session, handoff, EventType.released, principal)
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
    now or known (``shared.assignment.reassignee_name``).
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
    handoff = _load_for_update(session, principal, handoff_id)
    if handoff.status != HandoffStatus.claimed:
        raise invalid_state("reassign", handoff.status)
    _check_claim_owner_or_admin(handoff, principal)
    if handoff.claimed_by_id == body.to_id:
        raise Conflict(
            f"The handoff is already claimed by {handoff.claimed_by_name}.", code="already_claimer"
        )
    reassignment = {
        "from_id": handoff.claimed_by_id,
        "from_name": handoff.claimed_by_name,
        "to_id": body.to_id,
        "to_name": to_name,
        "note": note,
    }
    handoff.redactions += redactions
    handoff.claimed_by_id, handoff.claimed_by_name = body.to_id, to_name
    handoff.claimed_at = utcnow()
    _record_change(
        session, handoff, EventType.reassigned, principal, data={"reassignment": reassignment}
    )
    session.commit()
    return handoff_public(handoff)


def resolve_handoff(
    *,
    session: Session,
    principal: Principal,
    handoff_id: str,
    resolution_notes: str,
    redactors: RedactorCache | None = None,
) -> HandoffPublic:
    """Resolve a handoff the caller has claimed, with notes (redacted first,
    ``shared.redaction``)."""
    redactor = redactor_for(session=session, org_id=principal.org_id, cache=redactors)
    resolution_notes, redactions = redactor.redact(resolution_notes, _RESOLUTION_LIMIT)
    handoff = _load_for_update(session, principal, handoff_id)
    if handoff.status != HandoffStatus.claimed:
        raise invalid_state("resolve", handoff.status)
    if handoff.claimed_by_id != principal.user_id:
        raise _not_claim_owner(handoff)
    handoff.status = HandoffStatus.resolved.value
    handoff.resolved_at = utcnow()
    handoff.resolution_notes = resolution_notes
    handoff.redactions += redactions
    return _commit_change(session, handoff, EventType.resolved, principal)


def cancel_handoff(*, session: Session, principal: Principal, handoff_id: str) -> HandoffPublic:
    """Cancel a pending handoff: its creator or an admin."""
    handoff = _load_for_update(session, principal, handoff_id)
    if handoff.created_by_id != principal.user_id and not principal.is_admin:
        raise Forbidden("Only the handoff's creator or an admin can cancel it.", code="not_creator")
    if handoff.status != HandoffStatus.pending:
        raise invalid_state("cancel", handoff.status)
    handoff.status = HandoffStatus.cancelled.value
    handoff.cancelled_at = utcnow()
    handoff.next_escalation_at = None
    handoff.assigned_to_id = handoff.assigned_to_name = None
    if handoff.sla_settled_at is None and _before_deadline(handoff, handoff.cancelled_at):
        handoff.sla_settled_at = handoff.cancelled_at
    return _commit_change(session, handoff, EventType.cancelled, principal)


def _settled_if_in_time(now: datetime) -> Any:
    """SQL for ``sla_settled_at`` on a claim: settled now if this is the first
    claim and it beat the deadline; otherwise unchanged (the sweep decides)."""
    in_time = and_(
        col(Handoff.sla_settled_at).is_(None),
        col(Handoff.first_claimed_at).is_(None),
        col(Handoff.claim_deadline_at) >= now,
    )
    return case((in_time, now), else_=col(Handoff.sla_settled_at))


def _before_deadline(handoff: Handoff, moment: datetime) -> bool:
    deadline = handoff.claim_deadline_at
    return deadline is not None and moment <= as_utc(deadline)


def _load_for_update(session: Session, principal: Principal, handoff_id: str) -> Handoff:
    handoff = load_in_org(
        session, Handoff, org_id=principal.org_id, row_id=handoff_id, for_update=True
    )
    if handoff is None:
        raise handoff_not_found(handoff_id)
    return handoff


def _not_claim_owner(handoff: Handoff) -> Forbidden:
    return Forbidden(
        f"This handoff is claimed by {handoff.claimed_by_name}, not by you.",
        code="not_claim_owner",
    )


def _check_claim_owner_or_admin(handoff: Handoff, principal: Principal) -> None:
    if handoff.claimed_by_id != principal.user_id and not principal.is_admin:
        raise _not_claim_owner(handoff)


def _record_change(
    session: Session,
    handoff: Handoff,
    event_type: EventType,
    principal: Principal,
    data: dict[str, Any] | None = None,
) -> None:
    handoff.updated_at = utcnow()
    session.add(handoff)
    session.flush()
    record_event(session, handoff=handoff, type=event_type, actor=principal, data=data)


def _commit_change(
    session: Session, handoff: Handoff, event_type: EventType, principal: Principal
) -> HandoffPublic:
    _record_change(session, handoff, event_type, principal)
    session.commit()
    return handoff_public(handoff)
