"""Which Slack messages need sending: written with each event, enqueued on RQ.

The outbox calls :func:`note_event` in every event's transaction. A
``handoff_created`` event adds the handoff's message (one row, due now) in the
org's channel when its org has a workspace connected, and one in the channel
of its level's team if that team has one; a ``handoff_escalated`` to such a
team adds one there (once per channel). Any event after the first bumps the
version of the handoff's messages and makes them due. So the database says what Slack should
show, whatever happens to Redis or a worker after the commit.

:class:`SlackDispatcher` (a thread in every API and worker process, woken after
such commits and polling every ``POLL_INTERVAL_SECONDS``) marks due rows as
enqueued and enqueues one job per message on the ``notifications`` queue, with
the message's own job id; while a row is marked, no second job is enqueued for
it, so a message's sends never overlap. The job (``shared.slack.jobs``)
renders the handoff as it is when it runs, so a late job never sends a stale
state, and an event during the send leaves the row due again. A row marked
longer than ``LOST_JOB_GRACE_SECONDS`` whose job is gone (Redis restarted
empty, a worker killed mid-send) is unmarked and so sent again.
"""

import contextlib
import functools
import logging
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import (
    Engine,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from shared.core import keys
from shared.core.db import rows_changed, session_scope
from shared.core.timeutil import as_utc, utcnow
from shared.routing.models import Team
from shared.slack.models import SlackConnection, SlackMessage

log = logging.getLogger(__name__)

#: ``session.info`` flag: the transaction made a Slack message due.
SLACK_DUE = "slack_messages_due"
BATCH_SIZE = 200
POLL_INTERVAL_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 5.0
#: A job's Web API call times out well within this; the job itself within JOB_TIMEOUT.
JOB_TIMEOUT_SECONDS = 30
LOST_JOB_GRACE_SECONDS = 10.0
LOST_CHECK_SECONDS = 5.0
RESULT_TTL_SECONDS = 600
FAILURE_TTL_SECONDS = 24 * 3600


# --- written with each event ------------------------------------------------------


def note_event(
    session: Session,
    *,
    org_id: str,
    handoff_id: str,
    team_id: str | None,
    event_type: str,
    at: datetime,
) -> None:
    """In the event's transaction, when the org has a workspace connected: a new
    handoff gets its message in the org's channel; a new handoff or a level
    move whose team (``team_id``, the current level's) has a channel also gets
    one there (once per channel); every later event makes the handoff's
    messages due again."""
    parameters = {"p_org_id": org_id, "p_handoff_id": handoff_id, "p_at": at}
    written = 0
    if event_type != "handoff_created":
        written += rows_changed(session.execute(_bump_statement(), parameters))
    if event_type == "handoff_created":
        new = {**parameters, "p_id": str(uuid.uuid4())}
        written += rows_changed(session.execute(_new_message_statement(False), new))
    if team_id is not None and event_type in ("handoff_created", "handoff_escalated"):
        new = {**parameters, "p_id": str(uuid.uuid4()), "p_team_id": team_id}
        written += rows_changed(session.execute(_new_message_statement(True), new))
    if written:
        session.info[SLACK_DUE] = True


@functools.cache
def _bump_statement() -> Any:
    """The handoff's messages: one version more, due (built once: every event runs it)."""
    table = SlackMessage.__table__  # type: ignore[attr-defined]
    at = bindparam("p_at", type_=table.c.due_at.type)
    return (
        update(table)
        .where(
            table.c.handoff_id == bindparam("p_handoff_id"), table.c.org_id == bindparam("p_org_id")
        )
        .values(
            version=table.c.version + 1,
            # A due row keeps its time: a Retry-After wait is not cut short.
            due_at=func.coalesce(table.c.due_at, at),
            updated_at=at,
        )
        .execution_options(preserve_rowcount=True)
    )


@functools.cache
def _new_message_statement(for_team: bool) -> Any:
    """``INSERT … SELECT``: the handoff's message in the org's channel, or (``for_team``)
    in the channel of the team ``team_id``, unless the org is not connected, the team
    has no channel, or the handoff has a message there already (built once)."""
    return new_message_insert(for_team=for_team).execution_options(preserve_rowcount=True)


def new_message_insert(
    *,
    for_team: bool,
    not_in_org_channel: bool = False,
    id_param: str | None = "p_id",
    only_if: Any = None,
    new_handoff: bool = False,
) -> Any:
    """:func:`_new_message_statement`'s ``INSERT … SELECT`` (parameters ``id_param``
    (None: PostgreSQL makes the id),
    ``p_org_id``, ``p_handoff_id``, ``p_at``, and ``p_team_id`` ``for_team``).
    ``not_in_org_channel``: the team's message only in a channel other than the
    org's, for a statement that inserts the org channel's message beside it (its
    rows are not visible to the ``NOT EXISTS`` of a sibling in the same statement).
    ``only_if``: a condition more (e.g. that a sibling inserted the event).
    ``new_handoff``: the handoff is being inserted by the same statement, so it has
    no message to look for yet."""
    connections = SlackConnection.__table__  # type: ignore[attr-defined]
    messages = SlackMessage.__table__  # type: ignore[attr-defined]
    teams = Team.__table__  # type: ignore[attr-defined]
    channel = teams.c.slack_channel if for_team else connections.c.channel
    source = connections
    if for_team:
        source = connections.join(
            teams,
            (teams.c.org_id == connections.c.org_id) & (teams.c.id == bindparam("p_team_id")),
        )
    handoff_id = bindparam("p_handoff_id", type_=messages.c.handoff_id.type)
    at = bindparam("p_at", type_=messages.c.due_at.type)
    existing = select(messages.c.id).where(
        messages.c.handoff_id == handoff_id, messages.c.channel == channel
    )
    where = [connections.c.org_id == bindparam("p_org_id"), channel.is_not(None)]
    if not new_handoff:
        where.append(~existing.exists())
    if for_team and not_in_org_channel:
        where.append(channel != connections.c.channel)
    if only_if is not None:
        where.append(only_if)
    rows = (
        select(
            (
                bindparam(id_param, type_=messages.c.id.type)
                if id_param is not None
                else cast(func.gen_random_uuid(), String)
            ),
            connections.c.org_id,
            handoff_id,
            channel,
            literal_column("1"),
            literal_column("0"),
            literal_column("0"),
            at,
            at,
            at,
        )
        .select_from(source)
        .where(*where)
    )
    columns = [
        "id",
        "org_id",
        "handoff_id",
        "channel",
        "version",
        "synced_version",
        "attempts",
        "due_at",
        "created_at",
        "updated_at",
    ]
    return insert(messages).from_select(columns, rows)


# --- from rows to jobs --------------------------------------------------------------


def claim_due(session: Session, *, now: datetime, limit: int) -> list[tuple[str, str, str]]:
    """Marks up to ``limit`` due, unmarked messages as enqueued and returns their
    ``(id, org_id, handoff_id)``; commits. The conditional update lets
    concurrent dispatchers share the work without taking a row twice."""
    table = SlackMessage.__table__  # type: ignore[attr-defined]
    due = (
        select(table.c.id)
        .where(table.c.due_at <= now, table.c.enqueued_at.is_(None))
        .order_by(table.c.due_at)
        .limit(limit)
    )
    statement = (
        update(table)
        .where(table.c.id.in_(due.scalar_subquery()), table.c.enqueued_at.is_(None))
        .values(enqueued_at=now)
        .returning(table.c.id, table.c.org_id, table.c.handoff_id)
    )
    claimed = [(row.id, row.org_id, row.handoff_id) for row in session.execute(statement)]
    session.commit()
    return claimed


def unmark(session: Session, *, message_ids: list[str]) -> None:
    """Undo :func:`claim_due` for jobs that could not be enqueued; commits."""
    if message_ids:
        session.execute(
            update(SlackMessage)
            .where(col(SlackMessage.id).in_(message_ids))
            .values(enqueued_at=None)
        )
        session.commit()


def enqueue_sync(redis: Redis, *, message_id: str, org_id: str, handoff_id: str) -> Job:
    """Enqueue the job bringing ``message_id`` up to date, replacing a finished
    or lost job of the same id. Raises ``RedisError``."""
    job_id = keys.slack_message_job_id(message_id)
    with contextlib.suppress(NoSuchJobError):
        Job.fetch(job_id, connection=redis).delete()
    return Queue(keys.NOTIFICATIONS_QUEUE, connection=redis).enqueue(
        keys.SLACK_SYNC_JOB_FUNC,
        message_id,
        job_id=job_id,
        description=f"Bring the Slack message of handoff {handoff_id} up to date (org {org_id})",
        meta={"slack_message_id": message_id, "handoff_id": handoff_id, "org_id": org_id},
        job_timeout=JOB_TIMEOUT_SECONDS,
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
    )


def dispatch_due(*, engine: Engine, redis: Redis) -> int:
    """Enqueue every due message; returns how many. Rows whose enqueue failed
    are unmarked for the next pass, and the ``RedisError`` is raised."""
    total = 0
    while True:
        with session_scope(engine) as session:
            claimed = claim_due(session, now=utcnow(), limit=BATCH_SIZE)
        for index, (message_id, org_id, handoff_id) in enumerate(claimed):
            try:
                enqueue_sync(redis, message_id=message_id, org_id=org_id, handoff_id=handoff_id)
            except RedisError:
                with session_scope(engine) as session:
                    unmark(session, message_ids=[row[0] for row in claimed[index:]])
                raise
        total += len(claimed)
        if len(claimed) < BATCH_SIZE:
            return total


def unmark_lost(*, engine: Engine, redis: Redis) -> int:
    """Unmarks every message marked for ``LOST_JOB_GRACE_SECONDS`` whose job is
    neither waiting nor running; returns how many. Raises ``RedisError``."""
    cutoff = utcnow() - timedelta(seconds=LOST_JOB_GRACE_SECONDS)
    with session_scope(engine) as session:
        rows = session.execute(
            select(col(SlackMessage.id), col(SlackMessage.enqueued_at))
            .where(col(SlackMessage.enqueued_at) < cutoff)
            .limit(BATCH_SIZE)
        ).all()
    lost = 0
    for row in rows:
        if _job_live(redis, keys.slack_message_job_id(row.id)):
            continue
        with session_scope(engine) as session:
            changed = session.execute(
                update(SlackMessage)
                .where(
                    col(SlackMessage.id) == row.id,
                    col(SlackMessage.enqueued_at) == row.enqueued_at,
                )
                .values(enqueued_at=None)
            )
            session.commit()
        lost += rows_changed(changed)
    if lost:
        log.info("slack dispatcher: %d messages lost their job; due again", lost)
    return lost


def _job_live(redis: Redis, job_id: str) -> bool:
    """Waiting, or running for less than its timeout and a grace period (a job
    whose worker was killed stays "started" until RQ notices, much later)."""
    try:
        job = Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        return True
    if status != JobStatus.STARTED:
        return False
    started = as_utc(job.started_at or job.enqueued_at or utcnow())
    limit = timedelta(seconds=JOB_TIMEOUT_SECONDS + LOST_JOB_GRACE_SECONDS)
    return utcnow() - started < limit


class SlackDispatcher:
    """Runs :func:`dispatch_due` on a thread: at once after :meth:`notify`, and
    every ``POLL_INTERVAL_SECONDS``; :func:`unmark_lost` every
    ``LOST_CHECK_SECONDS``; backs off while Redis or the database is down."""

    def __init__(self, *, engine: Engine, redis: Redis) -> None:
        self._engine = engine
        self._redis = redis
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slack-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        backoff, next_lost_check = 0.0, 0.0
        while not self._stopped.is_set():
            self._wake.wait(backoff or POLL_INTERVAL_SECONDS)
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                if time.monotonic() >= next_lost_check:
                    unmark_lost(engine=self._engine, redis=self._redis)
                    next_lost_check = time.monotonic() + LOST_CHECK_SECONDS
                dispatch_due(engine=self._engine, redis=self._redis)
                backoff = 0.0
            except (RedisError, SQLAlchemyError) as exc:
                backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
                log.warning("slack dispatcher: %s; retrying in %.1f s", exc, backoff)
