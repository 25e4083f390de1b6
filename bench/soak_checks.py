"""The soak's invariants, checked against the database (the source of truth)
and what the soak's users and stream clients recorded. Each check returns a
:class:`Check`: PASS/FAIL, the figures behind it, and examples of what broke.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from bench.soak_cluster import Exit, Window
from bench.soak_sse import StreamClient
from bench.soak_users import STATE_CHANGES, Answer, ClaimRace, Load
from testkit.pg import libpq_dsn
from testkit.storm import ClaimAnswer, Senior, Storm, storm_problems

#: A fault's window lasts this long after what it broke answered again: clients'
#: pooled connections and the replicas' Redis clients notice the recovery.
RECOVERY_GRACE_SECONDS = 5.0
MAX_EXAMPLES = 3
TRANSITIONS = {  # (status before, event) -> status after
    ("pending", "handoff_claimed"): "claimed",
    ("claimed", "handoff_released"): "pending",
    ("claimed", "handoff_resolved"): "resolved",
    ("pending", "handoff_cancelled"): "cancelled",
}


@dataclass
class Check:
    name: str
    ok: bool
    figures: str
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DbEvent:
    org_id: str
    seq: int
    type: str
    handoff_id: str
    actor_id: str | None
    status: str  # the handoff's status as embedded in the event
    #: ``handoff_escalated``: the (level, loop) reached, from ``data.escalation``;
    #: ``handoff_assigned``: the (level, loop) assigned at, from ``data.assignment``.
    level: int | None = None
    loop: int | None = None
    at: datetime | None = None
    #: The ``next_escalation_at`` of the handoff embedded in the event.
    deadline: datetime | None = None
    #: ``handoff_assigned``: the assignee's id.
    assigned_to: str | None = None


@dataclass(frozen=True)
class DbHandoff:
    id: str
    org_id: str
    session_id: str
    status: str
    assessment_status: str
    #: Re-escalation as stored: (level, loop), the next deadline, and the levels'
    #: ``after_seconds`` and repeat copied at creation.
    level: int = 0
    loop: int = 0
    next_at: datetime | None = None
    after_seconds: tuple[int, ...] = ()
    repeat: int = 0
    modes: tuple[str, ...] = ()
    assigned_to: str | None = None


@dataclass
class Snapshot:
    handoffs: dict[str, DbHandoff]
    events: list[DbEvent]
    #: The database's time of the read (every row is as of then).
    read_at: datetime | None = None

    def by_org(self) -> dict[str, dict[int, DbEvent]]:
        orgs: dict[str, dict[int, DbEvent]] = defaultdict(dict)
        for event in self.events:
            orgs[event.org_id][event.seq] = event
        return orgs

    def by_handoff(self) -> dict[str, list[DbEvent]]:
        histories: dict[str, list[DbEvent]] = defaultdict(list)
        for event in self.events:  # ordered by org, seq
            histories[event.handoff_id].append(event)
        return histories


def read_snapshot(database_url: str) -> Snapshot:
    """Handoffs and events as of one moment (one repeatable-read transaction:
    workers still sweep while it reads)."""
    with psycopg.connect(libpq_dsn(database_url)) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        read_at = connection.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        handoffs = {
            row[0]: DbHandoff(*row[:8], _after_seconds(row[8]), row[9], _modes(row[8]), row[10])
            for row in connection.execute(
                "SELECT id, org_id, session_id, status, assessment_status, escalation_level, "
                "escalation_loop, next_escalation_at, escalation_levels, escalation_repeat, "
                "assigned_to_id FROM handoffs"
            )
        }
        events = [
            DbEvent(*row[:9], _time(row[9]), row[10])
            for row in connection.execute(
                "SELECT org_id, seq, type, handoff_id, actor_id, handoff->>'status', "
                "(coalesce(data->'escalation', data->'assignment')->>'level')::int, "
                "(coalesce(data->'escalation', data->'assignment')->>'loop')::int, at, "
                "handoff->>'next_escalation_at', data->'assignment'->>'assigned_to_id' "
                "FROM events ORDER BY org_id, seq"
            )
        ]
    return Snapshot(handoffs, events, read_at)


def _after_seconds(levels: list[dict[str, Any]] | None) -> tuple[int, ...]:
    return tuple(int(level["after_seconds"]) for level in levels or ())


def _modes(levels: list[dict[str, Any]] | None) -> tuple[str, ...]:
    return tuple(str(level["mode"]) for level in levels or ())


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def pending_assessments(database_url: str) -> set[str]:
    """Ids of the handoffs whose assessment is pending."""
    with psycopg.connect(libpq_dsn(database_url)) as connection:
        rows = connection.execute("SELECT id FROM handoffs WHERE assessment_status = 'pending'")
        return {row[0] for row in rows}


def latest_seqs(database_url: str) -> dict[str, int]:
    with psycopg.connect(libpq_dsn(database_url)) as connection:
        rows = connection.execute("SELECT org_id, max(seq) FROM events GROUP BY org_id")
        return {org: int(seq) for org, seq in rows}


def _examples(problems: Sequence[str]) -> list[str]:
    return list(problems[:MAX_EXAMPLES]) + (
        [f"... and {len(problems) - MAX_EXAMPLES} more"] if len(problems) > MAX_EXAMPLES else []
    )


# --- handoffs and their history -----------------------------------------------------


def check_handoffs(load: Load, snapshot: Snapshot) -> Check:
    """Every 201 is in the database with a history that is a legal run of the
    state machine, agrees with every event's embedded status and the final
    status, and holds exactly the state changes the soak was told succeeded."""
    problems: list[str] = []
    tracked = {h.id: h for org in load.orgs for h in org.handoffs.values()}
    histories = snapshot.by_handoff()
    for handoff_id, mine in tracked.items():
        row = snapshot.handoffs.get(handoff_id)
        if row is None or row.org_id != mine.org:
            problems.append(f"{handoff_id}: accepted (201) but not in the database for {mine.org}")
            continue
        problems += _history_problems(row, histories.get(handoff_id, []))
        changes = [(e.type, e.actor_id) for e in histories.get(handoff_id, [])]
        changes = [change for change in changes if change[0] in STATE_CHANGES]
        if not mine.uncertain and changes != mine.accepted:
            problems.append(f"{handoff_id}: history {changes} != accepted {mine.accepted}")
        elif mine.uncertain and not _is_subsequence(mine.accepted, changes):
            problems.append(f"{handoff_id}: accepted {mine.accepted} not all in {changes}")
    load_orgs = {org.name for org in load.orgs}  # the noisy webhook tenant's are not the load's
    phantoms = [
        row.id
        for row in snapshot.handoffs.values()
        if row.id not in tracked
        and row.org_id in load_orgs
        and row.session_id not in load.unacknowledged_sessions
    ]
    problems += [f"{handoff_id}: in the database, never acknowledged" for handoff_id in phantoms]
    problems += load.idempotent_mismatches
    uncertain = sum(h.uncertain for h in tracked.values())
    figures = (
        f"{len(tracked)} accepted, {len(snapshot.handoffs)} in db, "
        f"{len(snapshot.events)} events; {uncertain} with an unanswered request; "
        f"{load.idempotent_replays} Idempotency-Key replays"
    )
    return Check("accepted handoffs in db, history consistent", not problems, figures, problems)


def _history_problems(row: DbHandoff, history: list[DbEvent]) -> list[str]:
    if not history or history[0].type != "handoff_created":
        return [f"{row.id}: history does not start with handoff_created"]
    status, problems = "pending", []
    counts = Counter(event.type for event in history)
    for event in history[1:]:
        if event.type in STATE_CHANGES:
            after = TRANSITIONS.get((status, event.type))
            if after is None:
                problems.append(f"{row.id}: {event.type} while {status} (seq {event.seq})")
                break
            status = after
        if event.status != status:
            problems.append(f"{row.id}: event {event.seq} embeds {event.status}, want {status}")
            break
    if status != row.status:
        problems.append(f"{row.id}: history ends {status}, database says {row.status}")
    if counts["handoff_created"] != 1 or counts["handoff_sla_breached"] > 1:
        problems.append(f"{row.id}: event counts {dict(counts)}")
    problems += _assessment_problems(row, history, counts)
    return problems


def _assessment_problems(row: DbHandoff, history: list[DbEvent], counts: Counter[str]) -> list[str]:
    outcomes = [e.type for e in history if e.type.startswith("handoff_assessment_")]
    if row.assessment_status == "ready" and counts["handoff_assessment_ready"] != 1:
        return [f"{row.id}: ready with {counts['handoff_assessment_ready']} ready events"]
    if row.assessment_status == "failed" and (
        not outcomes or outcomes[-1] != "handoff_assessment_failed"
    ):
        return [f"{row.id}: failed, but its last assessment event is {outcomes[-1:]}"]
    if counts["handoff_assessment_ready"] > 1:
        return [f"{row.id}: {counts['handoff_assessment_ready']} ready events"]
    return []


def _is_subsequence(items: list[Any], sequence: list[Any]) -> bool:
    position = iter(sequence)
    return all(item in position for item in items)


# --- assessments ---------------------------------------------------------------------


def check_assessments(
    snapshot: Snapshot,
    *,
    settled_after: float | None,
    bound: float,
    load_to_faults_end: float,
    slowest: tuple[str, float] | None,
) -> Check:
    counts = Counter(row.assessment_status for row in snapshot.handoffs.values())
    took = "never" if settled_after is None else f"{settled_after:.1f} s"
    figures = (
        f"ready {counts['ready']}, failed {counts['failed']}, pending {counts['pending']}; "
        f"none pending {took} after the load and the faults ended (the last fault ended "
        f"{load_to_faults_end:+.1f} s from the end of the load); bound {bound:.0f} s"
    )
    if slowest is not None:
        history = [e.type.removeprefix("handoff_") for e in snapshot.by_handoff()[slowest[0]]]
        figures += f"; last to settle: {slowest[0]} at {slowest[1]:+.1f} s, history {history}"
    stuck = [row.id for row in snapshot.handoffs.values() if row.assessment_status == "pending"]
    ok = settled_after is not None and not stuck
    return Check("every assessment ready or failed", ok, figures, [f"{h}: pending" for h in stuck])


# --- claim races ----------------------------------------------------------------------


def check_races(races: Sequence[ClaimRace], windows: Sequence[Window]) -> Check:
    """Undisturbed races (every claim answered outside a fault): exactly one 200,
    every other a 409 naming that winner (``testkit/storm.py``'s contract).
    A race with a claim lost to a fault: at most one 200, every 409 naming one
    and the same winner."""
    problems: list[str] = []
    disturbed = 0
    for race in races:
        lost = [a for a in race.answers if a.status is None or a.status == 503]
        if lost and all(_in_window(a, windows, ("redis", "replica")) for a in lost):
            disturbed += 1
            problems += _disturbed_problems(race)
            continue
        problems += [f"{race.handoff_id}: {p}" for p in storm_problems(_storm(race))]
    figures = (
        f"{len(races)} races of 2-5 seniors over both replicas, {disturbed} with a claim lost "
        f"to a fault; {sum(len(r.answers) for r in races)} claims"
    )
    return Check("every claim race: one 200, 409s name it", not problems, figures, problems)


def _storm(race: ClaimRace) -> Storm:
    answers = [
        ClaimAnswer(
            Senior(user.id, user.name, user.headers),
            answer.status if answer.status is not None else 0,
            answer.body if isinstance(answer.body, dict) else {"error": answer.error},
            answer.sent,
            answer.answered,
        )
        for user, answer in zip(race.seniors, race.answers, strict=True)
    ]
    return Storm(race.handoff_id, answers, max(a.answered for a in race.answers))


def _disturbed_problems(race: ClaimRace) -> list[str]:
    winners = [a for a in race.answers if a.status == 200]
    named = {a.body.get("claimed_by_id") for a in race.answers if a.status == 409}
    if winners:
        named.add(winners[0].body.get("claimed_by_id"))
    if len(winners) > 1 or len(named) > 1:
        return [f"{race.handoff_id}: {len(winners)} winners, 409s name {named}"]
    return []


# --- streams --------------------------------------------------------------------------


def check_streams(
    clients: Sequence[StreamClient],
    snapshot: Snapshot,
    *,
    final_seqs: dict[str, int],
    replay_limit: int,
) -> Check:
    """Each client, over all its connections, got exactly its org's committed
    events after the id it started from, in order, with no gap or duplicate,
    and was at its org's last event at the end; a ``reset`` only when its
    ``Last-Event-ID`` was more than ``replay_limit`` events behind."""
    orgs = snapshot.by_org()
    problems: list[str] = []
    frames = resets = replays = 0
    for client in clients:
        log = orgs.get(client.org, {})
        for segment in client.segments:
            found, counts = _segment_problems(client, segment, log, replay_limit)
            problems += found
            frames += counts[0]
            resets += counts[1]
            replays += counts[2]
        final = final_seqs.get(client.org, 0)
        if client.cursor != final:
            last = client.segments[-1]
            problems.append(
                f"client {client.index}: ended at {client.cursor}, org at {final}; its last "
                f"connection (replica {last.replica}, from {last.opened:.1f}, Last-Event-ID "
                f"{last.last_event_id}) was {last.closed_by or 'open'}: {len(last.frames)} "
                f"messages, last {last.frames[-1:]}"
            )
    connections = sum(len(c.segments) for c in clients)
    figures = (
        f"{len(clients)} clients, {connections} connections, {replays} resumed with "
        f"Last-Event-ID, {resets} reset (limit {replay_limit}), {frames} events received"
    )
    return Check(
        "every stream: its org's events, in order, no gap/dup", not problems, figures, problems
    )


def _segment_problems(
    client: StreamClient, segment: Any, log: dict[int, DbEvent], replay_limit: int
) -> tuple[list[str], tuple[int, int, int]]:
    name = f"client {client.index} connection at {segment.opened:.1f}"
    problems: list[str] = []
    cursor = segment.last_event_id
    received = resets = 0
    replayed = int(segment.last_event_id is not None and segment.status == 200)
    for frame in segment.frames:
        if frame.event == "reset":
            resets += 1
            behind = (frame.data_seq or 0) - (segment.last_event_id or 0)
            if segment.last_event_id is None or behind <= replay_limit:
                problems.append(f"{name}: reset {behind} events behind (limit {replay_limit})")
            cursor = frame.seq
        elif frame.event == "ready":
            if cursor is not None and frame.seq != cursor:
                problems.append(f"{name}: ready at {frame.seq} after {cursor}")
            cursor = frame.seq
        else:
            received += 1
            problems += _frame_problems(name, frame, cursor, log, client.org)
            cursor = frame.seq
        if len(problems) > MAX_EXAMPLES:
            break
    if segment.closed_by == "bad_frame":
        problems.append(f"{name}: {segment.error}")
    return problems, (received, resets, replayed)


def _frame_problems(
    name: str, frame: Any, cursor: int | None, log: dict[int, DbEvent], org: str
) -> list[str]:
    if cursor is None:
        return [f"{name}: {frame.event} {frame.seq} before ready"]
    if frame.seq != cursor + 1:
        return [
            f"{name}: got {frame.seq} after {cursor} ({'dup' if frame.seq <= cursor else 'gap'})"
        ]
    committed = log.get(frame.seq)
    if frame.org_id != org or frame.data_id != frame.seq:
        return [f"{name}: event {frame.seq} of org {frame.org_id} id {frame.data_id}"]
    if committed is None or (committed.type, committed.handoff_id) != (
        frame.event,
        frame.handoff_id,
    ):
        return [f"{name}: event {frame.seq} {frame.event} {frame.handoff_id}, db has {committed}"]
    return []


def check_stream_endings(
    clients: Sequence[StreamClient], windows: Sequence[Window], ports: list[int]
) -> Check:
    """A stream ends only because the client chose to, or because its replica was
    killed; a refused stream only with 503 during a fault."""
    problems: list[str] = []
    ended = Counter()
    for client in clients:
        for segment in client.segments:
            ended[segment.closed_by] += 1
            if segment.closed_by in ("client", ""):
                continue
            if segment.status not in (None, 200, 503):
                problems.append(
                    f"client {client.index}: stream answered {segment.status} {segment.error}"
                )
                continue
            target = f"api-{ports[segment.replica]}"
            span = (segment.opened, segment.ended or segment.opened)
            kinds = (
                ("replica",)
                if segment.status == 200 or segment.status is None
                else ("redis", "replica")
            )
            if not _overlaps(span, windows, kinds, target if kinds == ("replica",) else None):
                problems.append(
                    f"client {client.index}: stream to replica {segment.replica} ended "
                    f"({segment.closed_by}, status {segment.status}, {segment.error}) "
                    "outside a fault"
                )
    figures = ", ".join(f"{why or 'open'} {n}" for why, n in sorted(ended.items()))
    return Check("streams end only by client or a replica kill", not problems, figures, problems)


# --- HTTP answers ------------------------------------------------------------------


def check_answers(answers: Sequence[Answer], windows: Sequence[Window], ports: list[int]) -> Check:
    """No 5xx but 503, and a 503 only during a Redis or replica fault; a
    transport error only on a request to a replica while it was killed."""
    problems: list[str] = []
    in_fault = Counter()
    for answer in answers:
        target = f"api-{ports[answer.replica]}"
        if answer.status is None:
            if _overlaps((answer.sent, answer.answered), windows, ("replica",), target):
                in_fault["connection errors to the killed replica"] += 1
            else:
                problems.append(f"{answer.action} to replica {answer.replica}: {answer.error}")
        elif answer.status >= 500:
            if answer.status == 503 and _in_window(answer, windows, ("redis", "replica")):
                in_fault["503 during a fault"] += 1
            else:
                problems.append(f"{answer.action}: {answer.status} {answer.body}")
    statuses = Counter(f"{a.status or 'error'}" for a in answers)
    figures = (
        f"{len(answers)} requests ({', '.join(f'{s}: {n}' for s, n in sorted(statuses.items()))}); "
        + ", ".join(f"{what} {n}" for what, n in in_fault.items())
    )
    return Check(
        "no 5xx but 503 in a fault; errors only to a killed replica",
        not problems,
        figures,
        problems,
    )


def _in_window(answer: Answer, windows: Sequence[Window], kinds: Iterable[str]) -> bool:
    return _overlaps((answer.sent, answer.answered), windows, tuple(kinds), None)


def _overlaps(
    span: tuple[float, float], windows: Sequence[Window], kinds: tuple[str, ...], target: str | None
) -> bool:
    for window in windows:
        if window.kind not in kinds or (target is not None and window.target != target):
            continue
        end = float("inf") if window.end is None else window.end + RECOVERY_GRACE_SECONDS
        if span[0] <= end and span[1] >= window.start:
            return True
    return False


def check_processes(exits: Sequence[Exit], *, watched: int) -> Check:
    """No API replica or worker ended unless the soak stopped or killed it (a
    Redis outage or a failed job must never end a process: it waits and goes on)."""
    problems = [
        f"{exit.name} (pid {exit.pid}) exited with {exit.code}; last line: {exit.last_line}"
        for exit in exits
    ]
    return Check(
        "no replica or worker exited unasked",
        not exits,
        f"{watched} replicas and workers watched, {len(exits)} exited unasked",
        _examples(problems),
    )


def status_table(answers: Sequence[Answer]) -> list[str]:
    """Lines: per action, how many of each status."""
    by_action: dict[str, Counter[str]] = defaultdict(Counter)
    for answer in answers:
        by_action[answer.action][str(answer.status or "error")] += 1
    return [
        f"  {action:<14} " + ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
        for action, counts in sorted(by_action.items())
    ]


def print_checks(checks: Sequence[Check]) -> bool:
    width = max(len(check.name) for check in checks)
    print(f"\n{'invariant':<{width}}  result  figures")
    print(f"{'-' * width}  ------  -------")
    for check in checks:
        print(f"{check.name:<{width}}  {'PASS' if check.ok else 'FAIL':<6}  {check.figures}")
        for problem in _examples(check.problems):
            print(f"{'':<{width}}          ! {problem}")
    return all(check.ok for check in checks)
