"""A handoff's life outside the claim: create (with idempotency), resolve, cancel.

Each function commits its own transaction, and each state change writes its
event (``shared.events.outbox.record_event``) in that same transaction. Functions take
keyword arguments only and raise ``shared.core.errors`` exceptions. Claims,
releases and reassignments are in ``claims.py``; reads in ``queries.py``.
"""

import hashlib
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from shared.auth.tokens import Principal
from shared.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    invalid_state,
)
from shared.core.timeutil import utcnow
from shared.events.models import EventType
from shared.events.outbox import record_event
from shared.handoffs import one_statement
from shared.handoffs._changes import (
    before_deadline,
    commit_change,
    load_for_update,
    not_claim_owner,
)
from shared.handoffs.models import (
    OPEN_STATUSES,
    PRIORITY_RANK,
    Handoff,
    HandoffCreate,
    HandoffPublic,
    HandoffStatus,
    IdempotencyRecord,
    ResolveBody,
)
from shared.handoffs.views import handoff_public
from shared.redaction.redactor import max_length, redact_create
from shared.redaction.service import RedactorCache, redactor_for
from shared.routing.assignment import PresentLookup, assign_on_level, present_at
from shared.routing.escalation import Plan, level_zero, plan_levels, start_levels

MAX_IDEMPOTENCY_KEY_LENGTH = 255
_RESOLUTION_LIMIT = max_length(ResolveBody, "resolution_notes")


#: The table's columns, for the reads that select plain rows (no ORM instances).
_handoffs = Handoff.__table__.c  # type: ignore[attr-defined]


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
    # Only a create with an Idempotency-Key reads it.
    request_hash = ""
    if idempotency_key is not None:
        _check_idempotency_key(idempotency_key)
        request_hash = _request_hash(body)
    # PostgreSQL without an Idempotency-Key: the reads below and the create's one
    # statement run outside a transaction (``one_statement``).
    one = idempotency_key is None and one_statement.start(session)
    redactor = redactor_for(session=session, org_id=principal.org_id, cache=redactors)
    body, redactions = redact_create(body, redactor)
    if one:
        created = _in_one_statement(
            session, principal, body, redactions, claim_sla_seconds, present, request_hash
        )
        if created is not None:
            return created
        session.rollback()  # the ORM path's work is one transaction, not autocommitted
    # No read for a replay or an open handoff of the session first: the flush's
    # unique indexes decide both, and the IntegrityError path answers them.
    plan = _plan(session, principal, body, claim_sla_seconds)
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


def _in_one_statement(
    session: Session,
    principal: Principal,
    body: HandoffCreate,
    redactions: int,
    claim_sla_seconds: int,
    present: PresentLookup | None,
    request_hash: str,
) -> tuple[HandoffPublic, bool] | None:
    """The create as one statement (``one_statement``), the body redacted; None:
    take the ORM path (the first level assigns, and someone is present)."""
    assumed = one_statement.assumed_plan(
        org_id=principal.org_id, claim_sla_seconds=claim_sla_seconds
    )
    # The org's policy as assumed (none), then, if it has one after all, as read.
    for plan in (assumed, None) if assumed is not None else (None,):
        if plan is None:
            plan = _plan(session, principal, body, claim_sla_seconds)
        handoff = _new_handoff(principal, body, claim_sla_seconds, plan, redactions, transient=True)
        if present_at(handoff, 0, present, session=session):
            return None
        try:
            created = one_statement.create(
                session,
                handoff=handoff,
                snapshot=body.snapshot,
                actor=principal,
                claim_sla_seconds=claim_sla_seconds,
            )
        except IntegrityError:
            session.rollback()
            return _after_create_race(session, principal, body, None, request_hash)
        if created is not None:
            return created, True
    return None


def _plan(
    session: Session, principal: Principal, body: HandoffCreate, claim_sla_seconds: int
) -> Plan:
    """The levels of the org's policy (read now) for the body's problem domain."""
    return plan_levels(
        session=session,
        org_id=principal.org_id,
        problem_domain=body.snapshot.problem_domain,
        claim_sla_seconds=claim_sla_seconds,
    )


def _new_handoff(
    principal: Principal,
    body: HandoffCreate,
    claim_sla_seconds: int,
    plan: Plan,
    redactions: int = 0,
    *,
    transient: bool = False,
) -> Handoff:
    """The new handoff at level 0. ``transient``: one that is never added to a
    session (``one_statement`` inserts its values): built with pydantic's
    ``model_construct``, without validation or ORM state (a tenth of the cost;
    its attributes can be read, not set)."""
    now = utcnow()
    fields: dict[str, Any] = dict(
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
    if transient:
        planned = Handoff.model_construct(**fields)
        return Handoff.model_construct(**fields, **level_zero(planned, now))
    handoff = Handoff(**fields)
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
    handoff = load_for_update(session, principal, handoff_id)
    if handoff.status != HandoffStatus.claimed:
        raise invalid_state("resolve", handoff.status)
    if handoff.claimed_by_id != principal.user_id:
        raise not_claim_owner(handoff)
    handoff.status = HandoffStatus.resolved.value
    handoff.resolved_at = utcnow()
    handoff.resolution_notes = resolution_notes
    handoff.redactions += redactions
    return commit_change(session, handoff, EventType.resolved, principal)


def cancel_handoff(*, session: Session, principal: Principal, handoff_id: str) -> HandoffPublic:
    """Cancel a pending handoff: its creator or an admin."""
    handoff = load_for_update(session, principal, handoff_id)
    if handoff.created_by_id != principal.user_id and not principal.is_admin:
        raise Forbidden("Only the handoff's creator or an admin can cancel it.", code="not_creator")
    if handoff.status != HandoffStatus.pending:
        raise invalid_state("cancel", handoff.status)
    handoff.status = HandoffStatus.cancelled.value
    handoff.cancelled_at = utcnow()
    handoff.next_escalation_at = None
    handoff.assigned_to_id = handoff.assigned_to_name = None
    if handoff.sla_settled_at is None and before_deadline(handoff, handoff.cancelled_at):
        handoff.sla_settled_at = handoff.cancelled_at
    return commit_change(session, handoff, EventType.cancelled, principal)
