"""PostgreSQL: a create as one statement on an autocommit connection.

The handoff, its org's event counter, the ``handoff_created`` event, the event's
webhook deliveries and the handoff's Slack messages are one ``WITH … INSERT``
statement. PostgreSQL runs one statement atomically, so it needs no ``BEGIN``
or ``COMMIT`` round trip, and nothing is read back: the answer is built from
the values inserted. What the ORM path (``lifecycle.create_handoff``) guarantees
holds here too:

* the open-session index refuses a second open handoff: the statement fails
  whole (no counter bump, no event), and the caller answers as on the ORM path;
* the event commits with the handoff, numbered from the org's counter row,
  which is upserted after the handoff row is inserted (its CTE selects from the
  handoff's), so a create waiting on another create of the same session never
  holds the counter meanwhile, and the counter is locked for this one statement;
* deliveries and Slack messages are the rows ``create_deliveries`` and
  ``note_event`` write for a ``handoff_created`` event.

After it, the outbox is told as after a session's commit
(``shared.events.outbox.committed_outside_session``).
"""

import functools
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, exists, func, insert, literal_column
from sqlalchemy import select as sa_select
from sqlmodel import Session

from shared.auth.tokens import Principal
from shared.core.db import DriverStatement
from shared.core.request_context import REQUEST_ID
from shared.events.models import Event, EventType
from shared.events.outbox import committed_outside_session, counter_after
from shared.events.record import new_event_json
from shared.handoffs.models import (
    AssessmentStatus,
    EscalationTarget,
    Handoff,
    HandoffPublic,
    HandoffStatus,
    Priority,
    Snapshot,
)
from shared.routing.escalation import Plan
from shared.routing.models import EscalationPolicy
from shared.routing.policies import default_policy
from shared.slack.sync import new_message_insert
from shared.webhooks.deliveries import delivery_insert

#: ``Session.connection``'s options for the statement: no transaction around it.
AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}

_CREATED = EventType.created.value
#: The summary (``HandoffSummary``) leaves these out of ``HandoffPublic``'s JSON.
_NOT_IN_SUMMARY = ("engineer_notes", "resolution_notes", "ai_assessment_data")
#: ``HandoffPublic``'s fields read as they are from the handoff's attribute of that name.
_COLUMN_FIELDS = tuple(
    name
    for name in HandoffPublic.model_fields
    if name not in ("status", "priority", "assessment_status", "snapshot", "escalation_target")
)


def start(session: Session) -> bool:
    """On PostgreSQL, with nothing begun yet: the session's connection (for the
    create's reads and its one statement) autocommits. Returns whether it does."""
    if session.in_transaction():
        return False
    bind = session.get_bind()
    if bind.dialect.name != "postgresql" or isinstance(bind, Connection):
        return False
    session.connection(execution_options=AUTOCOMMIT)
    return True


def create(
    session: Session,
    *,
    handoff: Handoff,
    snapshot: Snapshot,
    actor: Principal,
    claim_sla_seconds: int,
) -> HandoffPublic | None:
    """Insert ``handoff`` (new, not in the session; ``snapshot`` its validated
    snapshot) and what goes with it in one statement, and tell the outbox; the
    handoff as answered. Raises SQLAlchemy's ``IntegrityError`` when the
    open-session index refuses the handoff.

    A handoff planned with the default policy is inserted only if its org has
    no policy of its own when the statement runs; None when it has one (the
    caller reads it and plans again). Such orgs are remembered, so their next
    creates need not read the policy (``assumed_plan``)."""
    org_id = handoff.org_id
    without_policy = org_id not in _own_policy and _plans_default(handoff, claim_sla_seconds)
    connection = _autocommit_connection(session)
    public = _public(handoff, snapshot)
    answer = public.model_dump(mode="json")
    summary = _summary(answer)
    parameters = _parameters(handoff, answer["snapshot"], summary, actor)
    statement = _statement(
        connection.dialect,
        with_team=handoff.escalation_team_id is not None,
        without_policy=without_policy,
    )
    row = statement.first(connection, parameters)
    if row is None:  # the org has a policy of its own (now)
        _remember(_own_policy, org_id)
        _no_policy.discard(org_id)
        return None
    if without_policy:
        _remember(_no_policy, org_id)
    event_id, seq, deliveries, messages = row
    event_json = new_event_json(
        seq=seq,
        type=_CREATED,
        handoff_id=handoff.id,
        org_id=handoff.org_id,
        at=handoff.created_at,
        actor_id=actor.user_id,
        actor_name=actor.name,
        request_id=parameters["request_id"],
        handoff=summary,
    )
    committed_outside_session(
        connection,
        org_id=handoff.org_id,
        seq=seq,
        event_id=event_id,
        event_json=event_json,
        deliveries=bool(deliveries),
        slack_due=bool(messages),
    )
    return public


def _autocommit_connection(session: Session) -> Connection:
    # An assign-mode level's lookup of who is present ended the first transaction.
    if not session.in_transaction():
        start(session)
    connection = session.connection()
    if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        raise RuntimeError("one_statement.create needs start() first")
    return connection


# --- the default policy, assumed ---------------------------------------------------------

#: Orgs that had no escalation policy at their last create in this process, and
#: orgs whose own policy plans as the default one (at most ``MAX_KNOWN_ORGS`` each).
_no_policy: set[str] = set()
_own_policy: set[str] = set()
MAX_KNOWN_ORGS = 10_000


def assumed_plan(*, org_id: str, claim_sla_seconds: int) -> Plan | None:
    """The default policy's plan for an org that had no policy at its last
    create here (``create`` checks it still has none), else None: read it."""
    if org_id not in _no_policy:
        return None
    return Plan(levels=[dict(level) for level in _default_levels(claim_sla_seconds)], repeat=0)


@functools.lru_cache(maxsize=16)
def _default_levels(claim_sla_seconds: int) -> tuple[dict[str, Any], ...]:
    """``plan_levels``' levels for ``default_policy`` (which targets no team)."""
    policy = default_policy(claim_sla_seconds=claim_sla_seconds)
    assert policy.repeat == 0
    return tuple(
        {
            "after_seconds": level.after_seconds,
            "target": level.target.value,
            "team_id": level.team_id,
            "team_name": level.team_name,
            "mode": level.mode.value,
        }
        for level in policy.levels
    )


def _plans_default(handoff: Handoff, claim_sla_seconds: int) -> bool:
    levels = handoff.escalation_levels or []
    return handoff.escalation_repeat == 0 and tuple(levels) == _default_levels(claim_sla_seconds)


def _remember(orgs: set[str], org_id: str) -> None:
    if len(orgs) >= MAX_KNOWN_ORGS:
        orgs.clear()
    orgs.add(org_id)


def _public(handoff: Handoff, snapshot: Snapshot) -> HandoffPublic:
    """What ``handoff_public`` gives for the new handoff, from values already
    validated (the body's) or ours, so without validating them again."""
    fields = {name: getattr(handoff, name) for name in _COLUMN_FIELDS}
    fields["status"] = HandoffStatus(handoff.status)
    fields["priority"] = Priority(handoff.priority)
    fields["assessment_status"] = AssessmentStatus(handoff.assessment_status)
    fields["snapshot"] = snapshot
    fields["escalation_target"] = EscalationTarget(**handoff.escalation_target)
    return HandoffPublic.model_construct(**fields)


def _summary(answer: dict[str, Any]) -> dict[str, Any]:
    """``HandoffSummary``'s JSON from ``HandoffPublic``'s (``handoff_summary``
    gives the same): the long text left out, the snapshot's lists counted."""
    summary = {key: value for key, value in answer.items() if key not in _NOT_IN_SUMMARY}
    snapshot = answer["snapshot"]
    summary["snapshot"] = {
        "problem_summary": snapshot["problem_summary"],
        "problem_domain": snapshot["problem_domain"],
        "status": snapshot["status"],
        "step_count": snapshot["step_count"],
        "confidence_tier": snapshot["confidence_tier"],
        "tried_step_count": len(snapshot["tried_steps"] or ()),
        "transcript_message_count": len(snapshot["transcript"] or ()),
    }
    return summary


def _parameters(
    handoff: Handoff, snapshot: dict[str, Any], summary: dict[str, Any], actor: Principal
) -> dict[str, Any]:
    parameters = {name: getattr(handoff, name) for name in _HANDOFF_COLUMNS}
    parameters["snapshot"] = snapshot
    return parameters | {
        "actor_id": actor.user_id,
        "actor_name": actor.name,
        "event_handoff": summary,
        "request_id": REQUEST_ID.get(),
        "p_org_id": handoff.org_id,
        "p_handoff_id": handoff.id,
        "p_at": handoff.created_at,
        "p_team_id": handoff.escalation_team_id,
    }


#: The handoff's columns the statement sets: those a new handoff has values in, and
#: every one with a default on the Python side (SQLAlchemy binds those in any INSERT).
_HANDOFF_COLUMNS = tuple(
    dict.fromkeys(
        [
            *("id", "org_id", "session_id", "status", "priority", "priority_rank"),
            *("problem_domain", "created_by_id", "created_by_name", "created_at", "updated_at"),
            *("snapshot", "claim_deadline_at", "escalation_levels", "next_escalation_at"),
            "escalation_team_id",
            *(column.name for column in Handoff.__table__.c if column.default is not None),  # type: ignore[attr-defined]
        ]
    )
)


@functools.lru_cache(maxsize=32)
def _statement(dialect: Dialect, *, with_team: bool, without_policy: bool) -> DriverStatement:
    """``WITH h AS (INSERT handoff … RETURNING), c AS (upsert the counter … SELECT
    FROM h), e AS (INSERT event … SELECT FROM c), d AS (deliveries), m0 AS (the
    org channel's message)[, m1 AS (the team channel's)] SELECT id, seq,
    deliveries, messages``; built once per shape and dialect (building it costs
    more than running it), run on the driver's connection (``DriverStatement``).
    ``without_policy``: the handoff (and so all the rest) only while its org has
    no escalation policy. Names are short and constants inline: psycopg converts
    the SQL's placeholders once per text up to 4 KiB, every time above."""
    handoffs = Handoff.__table__  # type: ignore[attr-defined]
    events = Event.__table__  # type: ignore[attr-defined]
    policies = EscalationPolicy.__table__  # type: ignore[attr-defined]
    row = sa_select(*(bindparam(name, type_=handoffs.c[name].type) for name in _HANDOFF_COLUMNS))
    if without_policy:
        row = row.where(~exists().where(policies.c.org_id == bindparam("org_id")))
    handoff = (
        insert(handoffs)
        .from_select(list(_HANDOFF_COLUMNS), row)
        .returning(handoffs.c.org_id)
        .cte("h")
    )
    one: Any = literal_column("1")
    counter = counter_after(handoff)
    org_id = bindparam("org_id", type_=events.c.org_id.type)
    at = bindparam("created_at", type_=events.c.at.type)
    created: Any = literal_column(f"'{_CREATED}'")
    columns = ["org_id", "seq", "type", "handoff_id", "actor_id", "actor_name", "at", "handoff"]
    event = (
        insert(events)
        .from_select(
            [*columns, "request_id"],
            sa_select(
                org_id,
                counter.c.last_seq,
                created,
                bindparam("id", type_=events.c.handoff_id.type),
                bindparam("actor_id", type_=events.c.actor_id.type),
                bindparam("actor_name", type_=events.c.actor_name.type),
                at,
                bindparam("event_handoff", type_=events.c.handoff.type),
                bindparam("request_id", type_=events.c.request_id.type),
            ),
        )
        .returning(events.c.id, events.c.seq)
        .cte("e")
    )
    delivery = (
        delivery_insert(
            org_id=org_id, event_seq=event.c.seq, event_type=created, at=at, source=event
        )
        .returning(one)
        .cte("d")
    )
    # The messages only with the event (the handoff refused, nothing is written);
    # a new handoff has no message yet, so none is looked for.
    written = sa_select(event.c.id).exists()
    messages = [
        new_message_insert(for_team=False, id_param=None, only_if=written, new_handoff=True)
    ]
    if with_team:
        messages.append(
            new_message_insert(
                for_team=True,
                not_in_org_channel=True,
                id_param=None,
                only_if=written,
                new_handoff=True,
            )
        )
    message_counts = [
        sa_select(func.count())
        .select_from(message.returning(one).cte(f"m{index}"))
        .scalar_subquery()
        for index, message in enumerate(messages)
    ]
    statement = sa_select(
        event.c.id,
        event.c.seq,
        sa_select(func.count()).select_from(delivery).scalar_subquery().label("deliveries"),
        sum(message_counts[1:], message_counts[0]).label("messages"),
    )
    return DriverStatement(statement, dialect)
