"""The outbox: events written with their state change, and relayed to Redis.

Recording: :func:`record_event` adds the event (and its webhook deliveries, and
makes the handoff's Slack messages due) in the caller's transaction and keeps it
in ``session.info``.

Waking: after a commit through an engine with a started :class:`Outbox`, the
committed events (their JSON built in the committing thread) go to that
process's relay, and the webhook and Slack dispatchers wake.

Relaying: every publish goes through one Redis script that keeps, per org, the
last ``seq`` published: it publishes only events after it, and in order, so no
event leaves twice or before an earlier one, whichever processes relay the org.
The fast path publishes a commit's events straight from memory (one round trip,
no lock, no read). When the script finds a gap (an earlier event of the org not
out yet) or does not know the org, the org goes the log path: under the org's
Redis lock, its unpublished events are read in ``seq`` order and published from
the oldest. Different orgs relay in parallel in any process. A poll every
second sweeps every org with unpublished events older than half a second (a
process that died between commit and publish). Published events are then
marked in the database. When Redis or the database is down the relay backs
off: events are delayed, never lost. If Redis loses the script's state, the
log path may publish an event twice; streams drop duplicates by ``seq``.
"""

import functools
import logging
import weakref
from collections.abc import Iterable
from typing import Any

from redis import Redis
from sqlalchemy import Connection, Engine, bindparam, func, insert, inspect, literal_column
from sqlalchemy import event as sa_event
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from shared.auth.tokens import Principal
from shared.core.db import dialect_insert
from shared.core.request_context import REQUEST_ID
from shared.core.settings import Settings
from shared.core.timeutil import utcnow
from shared.events.models import Event, EventData, EventType, OrgEventCounter
from shared.events.record import event_json
from shared.events.relay import Committed, EventRelay
from shared.handoffs.models import Handoff
from shared.handoffs.views import handoff_summary
from shared.slack.sync import SLACK_DUE, SlackDispatcher, note_event
from shared.webhooks.deliveries import DELIVERIES_WRITTEN, create_deliveries, delivery_insert
from shared.webhooks.dispatch import DeliveryDispatcher

log = logging.getLogger(__name__)

#: ``session.info`` key: the events the transaction wrote.
EVENTS_WRITTEN = "outbox_events_written"


# --- recording ---------------------------------------------------------------------


def record_event(
    session: Session,
    *,
    handoff: Handoff,
    type: EventType,
    actor: Principal | None,
    data: EventData | None = None,
) -> Event:
    """Write the event for ``handoff``'s new state in the session's transaction.
    The event carries the slim view (``HandoffSummary``), whatever the size of
    the transcript, tried steps and notes.

    The caller commits. The per-org counter row stays locked until then, so an
    org's events commit in ``seq`` order and a replay after ``seq`` N never
    misses an event that commits later with a smaller number. The webhook
    deliveries the event calls for are written in the same transaction. On
    PostgreSQL the counter, the event and its deliveries are one statement
    (the counter row is locked for that round trip and the commit only).
    """
    event = Event(
        org_id=handoff.org_id,
        seq=0,  # numbered below, from the org's counter
        type=type.value,
        handoff_id=handoff.id,
        actor_id=actor.user_id if actor else None,
        actor_name=actor.name if actor else None,
        at=utcnow(),
        handoff=handoff_summary(handoff),
        request_id=REQUEST_ID.get(),
        data=data.model_dump(mode="json") if data is not None else None,
    )
    bind = session.connection()
    if bind.dialect.name == "postgresql":
        _insert_in_one_statement(session, event)
    else:
        event.seq = _next_seq(session, handoff.org_id)
        session.add(event)
        create_deliveries(
            session, org_id=event.org_id, event_seq=event.seq, event_type=event.type, at=event.at
        )
    note_event(
        session,
        org_id=event.org_id,
        handoff_id=handoff.id,
        team_id=handoff.escalation_team_id,
        event_type=event.type,
        at=event.at,
    )
    session.info.setdefault(EVENTS_WRITTEN, []).append((event.org_id, event))
    return event


def _next_seq(session: Session, org_id: str) -> int:
    bind = session.connection()
    insert = dialect_insert(bind)
    table = OrgEventCounter.__table__  # type: ignore[attr-defined]
    statement = (
        insert(table)
        .values(org_id=org_id, last_seq=1)
        .on_conflict_do_update(
            index_elements=[table.c.org_id], set_={"last_seq": table.c.last_seq + 1}
        )
        .returning(table.c.last_seq)
    )
    return int(session.execute(statement).scalar_one())


def _insert_in_one_statement(session: Session, event: Event) -> None:
    """PostgreSQL: the counter, the event and its deliveries in one statement;
    fills in ``event.id`` and ``event.seq``. The event is not in the session
    (it never changes after this), so a commit never expires it."""
    row = (  # session.execute: pending changes flush first, before the counter is locked
        session.execute(
            _event_statement(),
            {
                "org_id": event.org_id,
                "type": event.type,
                "handoff_id": event.handoff_id,
                "actor_id": event.actor_id,
                "actor_name": event.actor_name,
                "at": event.at,
                "handoff": event.handoff,
                "request_id": event.request_id,
                "data": event.data,
            },
        ).one()
    )
    event.id, event.seq = row.id, row.seq
    if row.deliveries:
        session.info[DELIVERIES_WRITTEN] = True


@functools.cache
def _event_statement() -> Any:
    """``WITH counter AS (upsert … RETURNING), event AS (INSERT … SELECT FROM
    counter RETURNING), delivery AS (INSERT … SELECT FROM event, the org's
    subscriptions) SELECT id, seq, deliveries`` (built once: building it costs
    more than running it)."""
    counters = OrgEventCounter.__table__  # type: ignore[attr-defined]
    events = Event.__table__  # type: ignore[attr-defined]
    org_id = bindparam("org_id", type_=counters.c.org_id.type)
    counter = (
        postgresql.insert(counters)
        .values(org_id=org_id, last_seq=1)
        .on_conflict_do_update(
            index_elements=[counters.c.org_id], set_={"last_seq": counters.c.last_seq + 1}
        )
        .returning(counters.c.last_seq)
        .cte("counter")
    )
    values = ["type", "handoff_id", "actor_id", "actor_name", "at", "handoff", "request_id", "data"]
    written = (
        insert(events)
        .from_select(
            ["org_id", "seq", *values],
            sa_select(
                org_id,
                counter.c.last_seq,
                *(bindparam(name, type_=events.c[name].type) for name in values),
            ),
        )
        .returning(events.c.id, events.c.seq, events.c.type, events.c.at)
        .cte("event")
    )
    deliveries = (
        delivery_insert(
            org_id=org_id,
            event_seq=written.c.seq,
            event_type=written.c.type,
            at=written.c.at,
            source=written,
        )
        .returning(literal_column("1"))
        .cte("delivery")
    )
    return sa_select(
        written.c.id,
        written.c.seq,
        sa_select(func.count()).select_from(deliveries).scalar_subquery().label("deliveries"),
    )


def counter_after(row: Any) -> Any:
    """``c AS (upsert the org's event counter … SELECT org_id FROM row RETURNING
    last_seq)``, for a statement whose CTE ``row`` wrote the handoff's row and
    returned its ``org_id``: the counter is locked after the handoff's row (the
    session's order), and only when that row was written."""
    counters = OrgEventCounter.__table__  # type: ignore[attr-defined]
    one: Any = literal_column("1")
    return (
        postgresql.insert(counters)
        .from_select(["org_id", "last_seq"], sa_select(row.c.org_id, one))
        .on_conflict_do_update(
            index_elements=[counters.c.org_id], set_={"last_seq": counters.c.last_seq + one}
        )
        .returning(counters.c.last_seq)
        .cte("c")
    )


# --- waking ------------------------------------------------------------------------


#: Per engine: the started outbox its commits wake.
_outboxes: "weakref.WeakKeyDictionary[Engine, Outbox]" = weakref.WeakKeyDictionary()


def _after_commit(session: OrmSession) -> None:
    events: list[tuple[str, Event]] = session.info.pop(EVENTS_WRITTEN, [])
    deliveries = session.info.pop(DELIVERIES_WRITTEN, False)
    slack_due = session.info.pop(SLACK_DUE, False)
    if not (events or deliveries or slack_due) or session.bind is None:
        return
    outbox = _outboxes.get(session.bind.engine)
    if outbox is None:
        return
    if slack_due:
        outbox.slack.notify()
    committed, expired = [], set()
    for org_id, written in events:
        if inspect(written).expired_attributes:  # a session that expires on commit
            expired.add(org_id)
        else:
            committed.append(
                Committed(written.org_id, written.seq, written.id or 0, event_json(written))
            )
    outbox.committed(committed, expired, deliveries=deliveries)


def committed_outside_session(
    bind: Engine | Connection,
    *,
    org_id: str,
    seq: int,
    event_id: int,
    event_json: str,
    deliveries: bool,
    slack_due: bool,
) -> None:
    """What a session's commit does (``_after_commit``) for an event committed
    by a statement of its own (``shared.handoffs.one_statement``): its JSON to the
    relay, and the dispatchers woken when it wrote deliveries or Slack messages."""
    outbox = _outboxes.get(bind.engine)
    if outbox is None:
        return
    if slack_due:
        outbox.slack.notify()
    outbox.committed([Committed(org_id, seq, event_id, event_json)], deliveries=deliveries)


def _after_rollback(session: OrmSession, _previous: Any) -> None:
    """A rolled-back event must never be published (its ``seq`` will be reused)."""
    session.info.pop(EVENTS_WRITTEN, None)
    session.info.pop(DELIVERIES_WRITTEN, None)
    session.info.pop(SLACK_DUE, None)


class Outbox:
    """One process's outbox threads: the event relay, the webhook dispatcher and
    the Slack dispatcher, woken by commits through ``engine`` (any session) while started."""

    def __init__(self, *, engine: Engine, redis: Redis, settings: Settings) -> None:
        self._engine = engine
        self.relay = EventRelay(engine=engine, redis=redis)
        self.dispatcher = DeliveryDispatcher(engine=engine, redis=redis, settings=settings)
        self.slack = SlackDispatcher(engine=engine, redis=redis)

    def start(self) -> None:
        if not sa_event.contains(OrmSession, "after_commit", _after_commit):
            sa_event.listen(OrmSession, "after_commit", _after_commit)
            sa_event.listen(OrmSession, "after_soft_rollback", _after_rollback)
        _outboxes[self._engine] = self
        self.relay.start()
        self.dispatcher.start()
        self.slack.start()

    def stop(self) -> None:
        """Stop waking; the relay publishes what is pending (best effort)."""
        _outboxes.pop(self._engine, None)
        self.slack.stop()
        self.dispatcher.stop()
        self.relay.stop()

    def committed(
        self, events: list[Committed], orgs: Iterable[str] = (), *, deliveries: bool = False
    ) -> None:
        """Called in the committing thread after a commit that wrote ``events``
        (and events of ``orgs`` to read from the log), or ``deliveries`` due now,
        or both. Never raises."""
        if events:
            self.relay.publish_now(events)
        if orgs:
            self.relay.notify(orgs)
        if deliveries:
            self.dispatcher.notify()
