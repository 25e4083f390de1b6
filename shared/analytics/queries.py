"""Escalation analytics: counts and time-to-X percentiles for an org's handoffs
created in a time window, computed by the database (SQLite or PostgreSQL).

Definitions (docs/analytics.md repeats them):

* **Window.** Handoffs of the org with ``since <= created_at < until``. What
  happened to them later (a claim after ``until``) still counts; a handoff
  created outside the window never does.
* **Time to claim.** The *first* ``handoff_claimed`` event minus ``created_at``.
  A handoff claimed, released and claimed again counts once, with its first
  claim: it measures how long the escalation waited before anyone picked it up.
* **Time to assessment.** The first ``handoff_assessment_ready`` event minus
  ``created_at`` (a retried assessment counts when it finally became ready).
* **Time to resolve.** ``resolved_at - created_at``.
* **Percentiles** use the *nearest-rank* method: with the ``n`` durations
  sorted ascending, the p-th percentile is the one at 1-based rank
  ``ceil(n * p / 100)``. It is always an observed duration (no interpolation);
  p50 of 10, 20, 30, 40, 100 s is 30 s and p90 is 100 s (numpy's default
  linear interpolation would say 76 s). Each is picked by SQL window functions
  (``ROW_NUMBER`` and ``COUNT(*) OVER``), so one row per metric (one per domain
  for ``by_domain``) comes back, never the durations themselves.
* **Seconds** are floats rounded to milliseconds, the resolution of SQLite's
  date functions, so both databases give the same numbers.
* **SLA breaches.** Handoffs in the window with a ``handoff_sla_breached``
  event. The SLA sweep writes at most one per handoff, so this is also the
  number of breach events.
* **Claimed at level.** Handoffs in the window by the escalation level their
  first claim came at.
* **Time to claim by team.** Time to claim grouped by the team the handoff's
  level targeted when it was first claimed (``team_id`` null: all seniors).
* **Seniors.** Per person (by id, with one name they acted under: the greatest, when it changed):
  ``claimed`` counts handoffs in the window they claimed (a reassignment to them
  does not count), ``resolved`` those they resolved, and
  ``time_to_claim_p50_seconds`` is over the handoffs whose first claim was theirs.
"""

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col

from shared.analytics.models import (
    DomainStats,
    DurationStats,
    EscalationAnalytics,
    LevelCount,
    SeniorStats,
    StatusCounts,
    TeamClaimStats,
)
from shared.core.errors import InvalidInput
from shared.core.timeutil import as_utc, utcnow
from shared.events.models import Event, EventType
from shared.handoffs.models import Handoff, HandoffStatus
from shared.routing.models import Team

DEFAULT_WINDOW = timedelta(days=30)


# --- entry point ------------------------------------------------------------------


def escalation_analytics(
    *,
    session: Session,
    org_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> EscalationAnalytics:
    """Metrics for ``org_id``'s handoffs created in ``[since, until)``.

    ``until`` defaults to ``now`` (the current time), ``since`` to 30 days
    before ``until``; naive times are UTC. Raises ``InvalidInput`` when
    ``since`` is after ``until`` or a bound is out of the representable range.
    Read-only: aggregate queries, each returning at most one row per status,
    domain, level, team or person.
    """
    since, until = resolve_window(since=since, until=until, now=now or utcnow())
    window = _Window(org_id=org_id, since=since, until=until)
    by_status = _status_counts(session, window)
    claim = _first_event_durations(window, EventType.claimed)
    return EscalationAnalytics(
        since=since,
        until=until,
        total=sum(by_status.model_dump().values()),
        by_status=by_status,
        time_to_claim_seconds=_duration_stats(session, claim),
        time_to_assessment_seconds=_duration_stats(
            session, _first_event_durations(window, EventType.assessment_ready)
        ),
        time_to_resolve_seconds=_duration_stats(session, _resolve_durations(window)),
        by_domain=_domain_stats(session, window, claim),
        sla_breaches=_sla_breaches(session, window),
        claimed_at_level=_claimed_at_level(session, window),
        time_to_claim_by_team=_team_claim_stats(session, window),
        seniors=_senior_stats(session, window),
    )


def resolve_window(
    *, since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The window in UTC, defaults filled in. Raises ``InvalidInput``."""
    try:
        until = as_utc(until) if until is not None else as_utc(now)
        since = as_utc(since) if since is not None else until - DEFAULT_WINDOW
    except OverflowError as exc:
        raise InvalidInput(
            "since and until must be times between years 1 and 9999.", code="invalid_window"
        ) from exc
    if since > until:
        raise InvalidInput("since must not be after until.", code="invalid_window")
    return since, until


# --- SQL ---------------------------------------------------------------------------


class SecondsBetween(FunctionElement[float]):
    """``end - start`` in seconds as a float, for two timestamp columns."""

    type = sa.Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(SecondsBetween, "postgresql")
def _seconds_between_postgresql(element: SecondsBetween, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) AS DOUBLE PRECISION)"


@compiles(SecondsBetween, "sqlite")
def _seconds_between_sqlite(element: SecondsBetween, compiler: Any, **kw: Any) -> str:
    # julianday() parses the stored "YYYY-MM-DD HH:MM:SS.ffffff" (UTC) text to
    # millisecond resolution.
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


class _Window:
    def __init__(self, *, org_id: str, since: datetime, until: datetime) -> None:
        self.org_id = org_id
        self.since = since
        self.until = until

    def where(self) -> tuple[Any, ...]:
        return (
            col(Handoff.org_id) == self.org_id,
            col(Handoff.created_at) >= self.since,
            col(Handoff.created_at) < self.until,
        )


def _first_event_durations(
    window: _Window, event_type: EventType, *, key: Any = Handoff.problem_domain
) -> sa.Subquery:
    """(key, seconds) per handoff in the window that has an ``event_type``
    event: its first such event's time minus ``created_at``; ``key`` is a handoff
    column (the domain unless told)."""
    first_at = sa.func.min(col(Event.at))
    return (
        sa.select(
            col(key).label("key"),
            SecondsBetween(col(Handoff.created_at), first_at).label("seconds"),
        )
        .join(Event, _events_of(event_type))
        .where(*window.where())
        .group_by(col(Handoff.id), col(key), col(Handoff.created_at))
        .subquery()
    )


def _resolve_durations(window: _Window) -> sa.Subquery:
    return (
        sa.select(
            col(Handoff.problem_domain).label("key"),
            SecondsBetween(col(Handoff.created_at), col(Handoff.resolved_at)).label("seconds"),
        )
        .where(*window.where(), col(Handoff.resolved_at).is_not(None))
        .subquery()
    )


def _ranked(durations: sa.Subquery, *, per_key: bool) -> sa.Subquery:
    """``durations`` with each row's 1-based ``rank`` by ascending seconds and
    the row count ``n`` (both per key when ``per_key``)."""
    partition = durations.c.key if per_key else None
    return sa.select(
        durations.c.key,
        durations.c.seconds,
        sa.func.row_number()
        .over(partition_by=partition, order_by=durations.c.seconds)
        .label("rank"),
        sa.func.count().over(partition_by=partition).label("n"),
    ).subquery()


def _percentile(ranked: sa.Subquery, p: int) -> Any:
    """Aggregate: the nearest-rank p-th percentile of ``ranked.seconds``, the
    row whose rank k = ceil(n * p / 100), i.e. (k - 1) * 100 < n * p <= k * 100
    (integer arithmetic, the same on both databases)."""
    rank, n = ranked.c.rank, ranked.c.n
    at_rank = sa.and_(rank * 100 >= n * p, (rank - 1) * 100 < n * p)
    return sa.func.max(sa.case((at_rank, ranked.c.seconds)))


def _duration_stats(session: Session, durations: sa.Subquery) -> DurationStats:
    ranked = _ranked(durations, per_key=False)
    count, p50, p90, longest = session.execute(
        sa.select(
            sa.func.count(),
            _percentile(ranked, 50),
            _percentile(ranked, 90),
            sa.func.max(ranked.c.seconds),
        )
    ).one()
    return DurationStats(count=count, p50=_seconds(p50), p90=_seconds(p90), max=_seconds(longest))


def _status_counts(session: Session, window: _Window) -> StatusCounts:
    rows = session.execute(
        sa.select(col(Handoff.status), sa.func.count())
        .where(*window.where())
        .group_by(col(Handoff.status))
    ).all()
    known = {status.value for status in HandoffStatus}
    return StatusCounts(**{status: count for status, count in rows if status in known})


def _percentiles_per_key(durations: sa.Subquery) -> sa.Select[Any]:
    """``(key, count, p50, p90)`` per key of ``durations`` (NULL keys form one group)."""
    ranked = _ranked(durations, per_key=True)
    return sa.select(
        ranked.c.key,
        sa.func.count().label("count"),
        _percentile(ranked, 50).label("p50"),
        _percentile(ranked, 90).label("p90"),
    ).group_by(ranked.c.key)


def _domain_stats(session: Session, window: _Window, claim: sa.Subquery) -> list[DomainStats]:
    """Every domain with a handoff in the window, most handoffs first, then by
    domain in code-point order (sorted here: the databases' collations differ)."""
    claim_percentiles = _percentiles_per_key(claim).subquery()
    domain = col(Handoff.problem_domain)
    rows = session.execute(
        sa.select(
            domain,
            sa.func.count(),
            sa.func.max(claim_percentiles.c.p50),
            sa.func.max(claim_percentiles.c.p90),
        )
        .outerjoin(claim_percentiles, claim_percentiles.c.key == domain)
        .where(*window.where())
        .group_by(domain)
    ).all()
    stats = [
        DomainStats(
            domain=name,
            count=count,
            time_to_claim_p50_seconds=_seconds(p50),
            time_to_claim_p90_seconds=_seconds(p90),
        )
        for name, count, p50, p90 in rows
    ]
    return sorted(stats, key=lambda item: (-item.count, item.domain))


def _sla_breaches(session: Session, window: _Window) -> int:
    return session.execute(
        sa.select(sa.func.count(sa.distinct(col(Handoff.id))))
        .join(Event, _events_of(EventType.sla_breached))
        .where(*window.where())
    ).scalar_one()


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


# --- routing: levels, teams, seniors ------------------------------------------------------


def _claimed_at_level(session: Session, window: _Window) -> list[LevelCount]:
    level = col(Handoff.first_claim_level)
    rows = session.execute(
        sa.select(level, sa.func.count())
        .where(*window.where(), level.is_not(None))
        .group_by(level)
        .order_by(level)
    ).all()
    return [LevelCount(level=level, count=count) for level, count in rows]


def _team_claim_stats(session: Session, window: _Window) -> list[TeamClaimStats]:
    """All seniors first, then teams by most claims, then by name."""
    durations = _first_event_durations(window, EventType.claimed, key=Handoff.first_claim_team_id)
    rows = session.execute(_percentiles_per_key(durations)).all()
    team_ids = [team_id for team_id, *_ in rows if team_id is not None]
    names = dict(
        session.execute(
            sa.select(col(Team.id), col(Team.name)).where(
                col(Team.org_id) == window.org_id, col(Team.id).in_(team_ids)
            )
        ).all()
    )
    stats = [
        TeamClaimStats(
            team_id=team_id,
            team_name=names.get(team_id) if team_id is not None else None,
            count=count,
            p50=_seconds(p50),
            p90=_seconds(p90),
        )
        for team_id, count, p50, p90 in rows
    ]
    return sorted(stats, key=lambda t: (t.team_id is not None, -t.count, t.team_name or ""))


def _senior_stats(session: Session, window: _Window) -> list[SeniorStats]:
    """Everyone who claimed or resolved a handoff of the window: most claims first."""
    claimed = _actions_by_person(session, window, EventType.claimed)
    resolved = _actions_by_person(session, window, EventType.resolved)
    p50s = {
        key: p50 for key, _, p50, _ in session.execute(_percentiles_per_key(_first_claims(window)))
    }
    people = {**resolved, **claimed}
    stats = [
        SeniorStats(
            id=person_id,
            name=name,
            claimed=claimed.get(person_id, ("", 0))[1],
            resolved=resolved.get(person_id, ("", 0))[1],
            time_to_claim_p50_seconds=_seconds(p50s.get(person_id)),
        )
        for person_id, (name, _) in people.items()
    ]
    return sorted(stats, key=lambda p: (-p.claimed, -p.resolved, p.id))


def _actions_by_person(
    session: Session, window: _Window, event_type: EventType
) -> dict[str, tuple[str, int]]:
    """actor id → (a name they acted under, handoffs of the window they did it to)."""
    actor = col(Event.actor_id)
    rows = session.execute(
        sa.select(
            actor, sa.func.max(col(Event.actor_name)), sa.func.count(sa.distinct(col(Handoff.id)))
        )
        .join(Event, _events_of(event_type))
        .where(*window.where(), actor.is_not(None))
        .group_by(actor)
    ).all()
    return {person_id: (name or person_id, count) for person_id, name, count in rows}


def _first_claims(window: _Window) -> sa.Subquery:
    """(key = the first claimer's id, seconds to that claim) per claimed handoff."""
    numbered = (
        sa.select(
            col(Event.actor_id).label("actor_id"),
            SecondsBetween(col(Handoff.created_at), col(Event.at)).label("seconds"),
            sa.func.row_number()
            .over(partition_by=col(Handoff.id), order_by=col(Event.seq))
            .label("nth"),
        )
        .join(Event, _events_of(EventType.claimed))
        .where(*window.where())
        .subquery()
    )
    return (
        sa.select(numbered.c.actor_id.label("key"), numbered.c.seconds)
        .where(numbered.c.nth == 1)
        .subquery()
    )


def _events_of(event_type: EventType) -> Any:
    """Join condition: the handoff's events of ``event_type``."""
    return sa.and_(
        col(Event.handoff_id) == col(Handoff.id),
        col(Event.org_id) == col(Handoff.org_id),
        col(Event.type) == event_type.value,
    )
