"""PostgreSQL: a worker's store as one statement, committed in the same round trip.

The assessment, the ``handoff_assessment_ready`` event (numbered from its org's
counter), the event's webhook deliveries and the bump of the handoff's Slack
messages are one ``WITH … UPDATE`` statement, run in autocommit (PostgreSQL
commits a statement when it ends): one round trip, where the session's path
(``service.store_assessment``) takes four (``BEGIN`` + ``UPDATE``, the event,
the Slack rows, ``COMMIT``). The commit is a normal, durable one: the event's
id and ``seq`` reach Redis only after their commit is flushed.

The event's summary is built before the statement runs, from the row as the
job's count left it (``Counted``), with what the store changes. The ``UPDATE``
holds only while that row version is still the current one (its ``xmin``: any
change by anyone since makes a new version with another), so the summary is
the row's state after the store. When it does not hold (the row changed since
the count, its assessment is ready, or it is gone) nothing is written and the
caller stores through the session's path, which reads the row as it is.

What the session's path guarantees holds here too: the event is written only
on the transition to ready, in the transaction of the change; the counter row
is locked after the handoff's row (the same order) and only for this statement;
the Slack rows are the ones ``note_event`` bumps (none for an org without Slack,
in the same round trip). After it, the outbox is told as after a session's
commit (``shared.events.outbox.committed_outside_session``).
"""

import functools
from datetime import datetime
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import Connection, Dialect, bindparam, func, insert, literal_column, text, update
from sqlalchemy import select as sa_select

from shared.assessments.service import Counted
from shared.core.db import driver_autocommit
from shared.core.request_context import REQUEST_ID
from shared.events.models import Event, EventType
from shared.events.outbox import committed_outside_session, counter_after
from shared.events.record import new_event_json
from shared.handoffs.models import AssessmentStatus, Handoff
from shared.handoffs.views import summary_of_columns
from shared.slack.models import SlackMessage
from shared.webhooks.deliveries import delivery_insert

_READY = AssessmentStatus.ready.value
_EVENT = EventType.assessment_ready.value


def store_if_unchanged(
    connection: Connection,
    *,
    handoff_id: str,
    counted: Counted,
    assessment: dict[str, Any],
    now: datetime,
) -> bool:
    """Store ``assessment`` (``AssessmentData``'s JSON) and its event, commit, and
    tell the outbox. False when nothing was written: the handoff changed since
    ``counted``, or is ready, or is gone (the caller stores the session's way).
    Runs on the driver's connection, with nothing begun on ``connection``."""
    summary = summary_of_columns(
        {**counted.columns, "assessment_status": _READY, "updated_at": now}
    )
    org_id = counted.columns["org_id"]
    request_id = REQUEST_ID.get()
    statement = _statement(connection.dialect)
    parameters = {
        **statement.params,
        "handoff_id": handoff_id,
        "xmin": counted.xmin,
        "assessment": Json(assessment),
        "now": now,
        "org_id": org_id,
        "summary": Json(summary),
        "request_id": request_id,
    }
    with driver_autocommit(connection) as raw:  # one round trip, the commit flushed
        row = raw.execute(statement.string, parameters).fetchone()
    if row is None:
        return False
    event_id, seq, deliveries, messages = row
    event_json = new_event_json(
        seq=seq,
        type=_EVENT,
        handoff_id=handoff_id,
        org_id=org_id,
        at=now,
        actor_id=None,
        actor_name=None,
        request_id=request_id,
        handoff=summary,
    )
    committed_outside_session(
        connection,
        org_id=org_id,
        seq=seq,
        event_id=event_id,
        event_json=event_json,
        deliveries=bool(deliveries),
        slack_due=bool(messages),
    )
    return True


@functools.cache
def _statement(dialect: Dialect) -> Any:
    """``WITH h AS (UPDATE handoff … WHERE xmin = … RETURNING), c AS (upsert the
    counter … SELECT FROM h), e AS (INSERT event … SELECT FROM c), d AS
    (deliveries), m AS (UPDATE the Slack messages … WHERE EXISTS e) SELECT id,
    seq, deliveries, messages``, compiled once for the driver."""
    handoffs = Handoff.__table__  # type: ignore[attr-defined]
    events = Event.__table__  # type: ignore[attr-defined]
    messages = SlackMessage.__table__  # type: ignore[attr-defined]
    now = bindparam("now", type_=handoffs.c.updated_at.type)
    one: Any = literal_column("1")
    handoff = (
        update(handoffs)
        .where(
            handoffs.c.id == bindparam("handoff_id"),
            handoffs.c.assessment_status != _READY,
            text("handoffs.xmin = CAST(:xmin AS xid)"),
        )
        .values(
            ai_assessment_data=bindparam("assessment"), assessment_status=_READY, updated_at=now
        )
        .returning(handoffs.c.org_id)
        .cte("h")
    )
    counter = counter_after(handoff)
    org_id = bindparam("org_id", type_=events.c.org_id.type)
    event_type: Any = literal_column(f"'{_EVENT}'")
    event = (
        insert(events)
        .from_select(
            ["org_id", "seq", "type", "handoff_id", "at", "handoff", "request_id"],
            sa_select(
                org_id,
                counter.c.last_seq,
                event_type,
                bindparam("handoff_id", type_=events.c.handoff_id.type),
                now,
                bindparam("summary", type_=events.c.handoff.type),
                bindparam("request_id", type_=events.c.request_id.type),
            ),
        )
        .returning(events.c.id, events.c.seq)
        .cte("e")
    )
    deliveries = (
        delivery_insert(
            org_id=org_id, event_seq=event.c.seq, event_type=event_type, at=now, source=event
        )
        .returning(one)
        .cte("d")
    )
    # note_event's bump (shared.slack.sync._bump_statement), only with the event.
    slack = (
        update(messages)
        .where(
            messages.c.handoff_id == bindparam("handoff_id"),
            messages.c.org_id == org_id,
            sa_select(event.c.id).exists(),
        )
        .values(
            version=messages.c.version + 1,
            due_at=func.coalesce(messages.c.due_at, now),
            updated_at=now,
        )
        .returning(one)
        .cte("m")
    )
    statement = sa_select(
        event.c.id,
        event.c.seq,
        sa_select(func.count()).select_from(deliveries).scalar_subquery(),
        sa_select(func.count()).select_from(slack).scalar_subquery(),
    )
    return statement.compile(dialect=dialect)
