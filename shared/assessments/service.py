"""Assessment state on a handoff: count a try, store a result, record a
failure, and let a senior ask for another try.

Storing is an upsert keyed by handoff, so a re-run is harmless, and each
event is written only on the transition it names (one ``ready``, one
``failed``), in the same transaction as the change.

The worker's path (count the try, read the org's memory, store) is a few
statements each: an ``UPDATE … RETURNING`` both locks and changes the row,
so no ``SELECT … FOR UPDATE`` goes before it. Those updates are built once
(building one cost more than running it) and skip the ORM's session
synchronization (the worker's session holds no other handoff to refresh).
On PostgreSQL the try's count and the memory read are one statement, one
round trip (:func:`start_attempt_pipelined`), and the worker's store is one
statement (``shared.assessments.one_statement``) while the row is as counted;
:func:`store_assessment` is the store otherwise.
"""

import functools
from typing import Any, NamedTuple

import psycopg
from psycopg.types.json import Json
from sqlalchemy import Connection, Dialect, bindparam, func, literal_column, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlmodel import Session, col, select

from shared.auth.tokens import Principal
from shared.core.db import driver_autocommit
from shared.core.errors import Conflict, handoff_not_found
from shared.core.timeutil import utcnow
from shared.events.models import EventType
from shared.events.outbox import record_event
from shared.handoffs.models import (
    AssessmentData,
    AssessmentStatus,
    Handoff,
    HandoffPublic,
    HandoffStatus,
)
from shared.handoffs.views import SUMMARY_COLUMNS, handoff_public

PAST_RESOLUTIONS_LIMIT = 200
_READY = AssessmentStatus.ready.value


class ResolvedHandoff(NamedTuple):
    """What the assessor's memory reads of a resolved handoff (not the whole row)."""

    id: str
    snapshot: dict[str, Any]
    problem_domain: str
    engineer_notes: str
    resolution_notes: str | None


class Attempt(NamedTuple):
    """A counted try: what the job reads of its handoff."""

    id: str
    org_id: str
    priority: str
    engineer_notes: str
    snapshot: dict[str, Any]
    assessment_attempts: int


class Counted(NamedTuple):
    """PostgreSQL: the handoff's row as the count left it, in the columns its
    event's summary reads, and that row version's ``xmin`` (any later change of
    the row gives it another): what lets the store write the event without
    reading the row again (``shared.assessments.one_statement``)."""

    columns: dict[str, Any]
    xmin: str


def begin_attempt(*, session: Session, handoff_id: str) -> Handoff | None:
    """Count a started try and commit it. None when there is nothing to do: the
    handoff is gone or its assessment is already ready."""
    handoff = start_attempt(session=session, handoff_id=handoff_id)
    if handoff is None:
        session.rollback()
        return None
    session.commit()
    return handoff


def start_attempt(*, session: Session, handoff_id: str) -> Handoff | None:
    """Count a started try in the session's transaction (the caller commits it,
    before the assessor runs, so a try that kills its worker still counts). None
    when the handoff is gone or its assessment is already ready."""
    return session.execute(_count_try(), {"handoff_id": handoff_id}).scalars().first()


@functools.cache
def _count_try() -> Any:
    return (
        update(Handoff)
        .where(col(Handoff.id) == bindparam("handoff_id"), col(Handoff.assessment_status) != _READY)
        .values(assessment_attempts=col(Handoff.assessment_attempts) + 1)
        .returning(Handoff)
        .execution_options(synchronize_session=False)
    )


def attempt_of(handoff: Handoff) -> Attempt:
    return Attempt(*(getattr(handoff, name) for name in Attempt._fields))


def start_attempt_pipelined(
    connection: Connection, handoff_id: str
) -> tuple[Attempt, list[ResolvedHandoff], Counted] | None:
    """PostgreSQL: count the try and read the org's memory as one statement in
    autocommit (the count's ``UPDATE … RETURNING`` as a CTE, the memory as a JSON
    array beside its row): one round trip and one commit, where the two
    statements on their own were two, the count's waiting for its WAL flush.
    None when the handoff is gone or its assessment is ready. Runs on the
    driver's connection, before the caller's ``Connection`` begins anything.
    (The name is from when the two were a psycopg pipeline: the same round
    trip, twice this one's CPU in the worker.)

    The commit does not wait for its WAL flush (``synchronous_commit = off``
    for this transaction only): a database crash within a fraction of a second
    could lose this one count, never a stored assessment or an event (those
    commit synchronously, and their flush carries this earlier commit with it).

    It is the job's first statement, and the worker's pool does not ping on
    checkout: on a connection the database dropped (a restart) it runs once
    more on a new connection. Counting a try twice, when a commit went through
    and only its answer was lost, is harmless.
    """
    try:
        return _start_in_one_statement(connection, handoff_id)
    except psycopg.OperationalError:
        connection.invalidate()  # the next use takes a new connection
        return _start_in_one_statement(connection, handoff_id)


def _start_in_one_statement(
    connection: Connection, handoff_id: str
) -> tuple[Attempt, list[ResolvedHandoff], Counted] | None:
    statement = _start_statement(connection.dialect)
    with driver_autocommit(connection) as raw:  # one statement: one transaction
        parameters = {**statement.params, "handoff_id": handoff_id}
        row = raw.execute(statement.string, parameters).fetchone()
    if row is None:
        return None
    *counted, xmin, _, past = row
    columns = dict(zip(_START_COLUMNS, counted, strict=True))
    attempt = Attempt(*(columns[name] for name in Attempt._fields))
    return attempt, [ResolvedHandoff(*handoff) for handoff in past], Counted(columns, xmin)


#: What the count returns (then the row's ``xmin``): the try, and the event's summary.
_START_COLUMNS = tuple(dict.fromkeys([*Attempt._fields, *SUMMARY_COLUMNS]))


@functools.cache
def _start_statement(dialect: Dialect) -> Any:
    """``WITH counted AS (UPDATE handoffs … RETURNING <_START_COLUMNS>, xmin)
    SELECT counted.*, set_config('synchronous_commit', 'off', true), (the memory
    of counted.org_id as one JSON array of [id, snapshot, problem_domain,
    engineer_notes, resolution_notes], latest first) FROM counted``, compiled
    once for the driver. ``set_config`` is ``SET LOCAL`` for this statement's
    own transaction, so it holds at its commit."""
    table = Handoff.__table__  # type: ignore[attr-defined]
    counted = (
        update(table)
        .where(table.c.id == bindparam("handoff_id"), table.c.assessment_status != _READY)
        .values(assessment_attempts=table.c.assessment_attempts + 1)
        .returning(
            *(table.c[name] for name in _START_COLUMNS),
            literal_column("handoffs.xmin").label("row_xmin"),
        )
        .cte("counted")
    )
    # The org as an InitPlan, so the memory is an index range (ix_handoffs_resolved) of
    # that org alone; joined to ``counted`` the planner scanned every org's resolutions.
    org_id = sa_select(counted.c.org_id).scalar_subquery()
    past = _memory(org_id).add_columns(col(Handoff.resolved_at)).subquery("past")
    entry = func.json_build_array(*(past.c[name] for name in ResolvedHandoff._fields))
    memory = sa_select(
        func.coalesce(
            func.json_agg(aggregate_order_by(entry, past.c.resolved_at.desc())),
            literal_column("'[]'::json"),
        )
    ).scalar_subquery()
    statement = sa_select(
        *counted.c, func.set_config("synchronous_commit", "off", literal_column("true")), memory
    )
    return statement.compile(dialect=dialect)


def recent_resolutions(*, session: Session, org_id: str) -> list[ResolvedHandoff]:
    """The org's most recently resolved handoffs, the assessor's memory."""
    return [ResolvedHandoff(*row) for row in session.execute(_memory(org_id))]


def _memory(org_id: Any) -> Any:
    return (
        sa_select(
            col(Handoff.id),
            col(Handoff.snapshot),
            col(Handoff.problem_domain),
            col(Handoff.engineer_notes),
            col(Handoff.resolution_notes),
        )
        .where(col(Handoff.org_id) == org_id, col(Handoff.status) == HandoffStatus.resolved.value)
        .order_by(col(Handoff.resolved_at).desc())
        .limit(PAST_RESOLUTIONS_LIMIT)
    )


def store_assessment(*, session: Session, handoff_id: str, assessment: AssessmentData) -> bool:
    """Upsert the assessment. Writes ``handoff_assessment_ready`` only when the
    status becomes ready. False when the handoff no longer exists."""
    values = {
        "handoff_id": handoff_id,
        "assessment": assessment.model_dump(mode="json"),
        "updated_at": utcnow(),
    }
    if session.get_bind().dialect.name == "postgresql":
        handoff = _store_pipelined(session, values)
    else:
        handoff = _store(session, values, unless_ready=True)
    became_ready = handoff is not None
    if handoff is None:  # gone, or a re-run of a ready assessment: overwrite, no event
        handoff = _store(session, values, unless_ready=False)
    if handoff is None:
        session.rollback()
        return False
    if became_ready:
        record_event(session, handoff=handoff, type=EventType.assessment_ready, actor=None)
    session.commit()
    return True


def _store(session: Session, values: dict[str, Any], *, unless_ready: bool) -> Handoff | None:
    """Store the assessment on one handoff and return the handoff as it now is
    (locked until the commit). With ``unless_ready``, only when its assessment
    is not ready yet: the transition to ready is decided by the row lock, not by
    an earlier read."""
    return session.execute(_store_statement(unless_ready), values).scalars().first()


def _store_pipelined(session: Session, values: dict[str, Any]) -> Handoff | None:
    """PostgreSQL: :func:`_store` with ``unless_ready``, its ``BEGIN`` and
    ``UPDATE`` sent as one pipeline (one round trip, not two) on the driver's
    connection, in the transaction the session goes on with. The handoff comes
    back as a transient ``Handoff`` (the event reads its fields; nothing else
    does)."""
    statement = _store_compiled(session.get_bind().dialect)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    parameters = {**statement.params, **values, "assessment": Json(values["assessment"])}
    with raw.pipeline():
        row = raw.execute(statement.string, parameters).fetchone()
    if row is None:
        return None
    return Handoff(**dict(zip(_HANDOFF_COLUMNS, row, strict=True)))


_HANDOFF_COLUMNS = tuple(column.name for column in Handoff.__table__.columns)  # type: ignore[attr-defined]


@functools.cache
def _store_compiled(dialect: Dialect) -> Any:
    table = Handoff.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(table.c.id == bindparam("handoff_id"), table.c.assessment_status != _READY)
        .values(
            ai_assessment_data=bindparam("assessment"),
            assessment_status=_READY,
            updated_at=bindparam("updated_at", type_=table.c.updated_at.type),
        )
        .returning(*(table.c[name] for name in _HANDOFF_COLUMNS))
    )
    return statement.compile(dialect=dialect)


@functools.cache
def _store_statement(unless_ready: bool) -> Any:
    table = Handoff.__table__  # type: ignore[attr-defined]
    statement = update(Handoff).where(col(Handoff.id) == bindparam("handoff_id"))
    if unless_ready:
        statement = statement.where(col(Handoff.assessment_status) != _READY)
    return (
        statement.values(
            ai_assessment_data=bindparam("assessment", type_=table.c.ai_assessment_data.type),
            assessment_status=_READY,
            updated_at=bindparam("updated_at", type_=table.c.updated_at.type),
        )
        .returning(Handoff)
        .execution_options(synchronize_session=False)
    )


def mark_assessment_failed(*, session: Session, handoff_id: str) -> bool:
    """Record the final failure once. False when there was nothing to change
    (gone, already failed, or ready after all)."""
    handoff = _locked(session, handoff_id)
    if handoff is None or handoff.assessment_status != AssessmentStatus.pending:
        session.rollback()
        return False
    handoff.assessment_status = AssessmentStatus.failed.value
    handoff.updated_at = utcnow()
    session.add(handoff)
    session.flush()
    record_event(session, handoff=handoff, type=EventType.assessment_failed, actor=None)
    session.commit()
    return True


def reopen_assessment(
    *, session: Session, principal: Principal, handoff_id: str, job_is_live: bool
) -> HandoffPublic:
    """Set a failed (or lost) assessment back to pending so it can be enqueued
    again. Raises ``Conflict`` when it is ready or a job is still running."""
    handoff = _locked(session, handoff_id, org_id=principal.org_id)
    if handoff is None:
        raise handoff_not_found(handoff_id)
    if handoff.assessment_status == AssessmentStatus.ready:
        raise Conflict("The assessment is already ready.", code="assessment_ready")
    if job_is_live:
        raise Conflict("The assessment is already running.", code="assessment_running")
    handoff.assessment_status = AssessmentStatus.pending.value
    handoff.assessment_attempts = 0
    handoff.updated_at = utcnow()
    session.add(handoff)
    session.commit()
    return handoff_public(handoff)


def _locked(session: Session, handoff_id: str, *, org_id: str | None = None) -> Handoff | None:
    statement = select(Handoff).where(Handoff.id == handoff_id)
    if org_id is not None:
        statement = statement.where(Handoff.org_id == org_id)
    statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.exec(statement).first()
