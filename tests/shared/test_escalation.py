"""Re-escalation on a real database (SQLite and PostgreSQL): levels move when
their stored deadline passes (the sweep is given ``now``, so no test waits),
once per level and loop however many sweeps race, loop ``repeat`` times and
stop; a claim or a cancellation stops them, a release starts over; a policy
change leaves open handoffs alone; ``domain_team`` resolves to the owner of the
handoff's domain, or to all seniors."""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from shared.audit import SYSTEM
from shared.auth.tokens import Principal
from shared.core.db import make_engine, session_scope
from shared.core.models import Role
from shared.core.timeutil import as_utc
from shared.events.models import Event
from shared.handoffs.claims import claim_handoff, release_handoff
from shared.handoffs.lifecycle import cancel_handoff, create_handoff
from shared.handoffs.models import Handoff, HandoffCreate
from shared.routing import escalation
from shared.routing.escalation import sweep_escalations
from shared.routing.models import EscalationPolicyBody, TeamBody
from shared.routing.policies import put_policy
from shared.routing.teams import create_team
from tests.conftest import empty_tables, handoff_body

SLA_SECONDS = 300
FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)
JUNIOR = Principal(user_id="u-1", name="Jo Junior", role=Role.engineer, org_id="acme")
SENIOR = Principal(user_id="u-2", name="Dana Senior", role=Role.senior, org_id="acme")


def _team(engine: Engine, name: str = "Networking", domains: tuple[str, ...] = ()) -> str:
    with session_scope(engine) as session:
        body = TeamBody(name=name, members=[], domains=list(domains))
        return create_team(
            session=session, actor=SYSTEM, org_id="acme", body=body, max_teams=100
        ).id


def _policy(engine: Engine, levels: list[dict[str, Any]], repeat: int = 0) -> None:
    body = EscalationPolicyBody.model_validate({"levels": levels, "repeat": repeat})
    with session_scope(engine) as session:
        put_policy(session=session, actor=SYSTEM, org_id="acme", body=body)


def _level(after_seconds: int, target: str = "all_seniors", **fields: Any) -> dict[str, Any]:
    return {"after_seconds": after_seconds, "target": target, "mode": "broadcast", **fields}


def _two_levels(engine: Engine, repeat: int = 0) -> str:
    """Networking (owner of ``kubernetes``) for 2 s, then all seniors for 5 s."""
    team_id = _team(engine, domains=("kubernetes",))
    _policy(engine, [_level(2, "domain_team"), _level(5)], repeat=repeat)
    return team_id


def _create(engine: Engine, session_id: str = "sess-1", domain: str = "kubernetes") -> str:
    body = handoff_body(session_id)
    body["snapshot"]["problem_domain"] = domain  # type: ignore[index]
    with session_scope(engine) as session:
        handoff, _ = create_handoff(
            session=session,
            principal=JUNIOR,
            body=HandoffCreate.model_validate(body),
            claim_sla_seconds=SLA_SECONDS,
        )
    return handoff.id


def _handoff(engine: Engine, handoff_id: str) -> Handoff:
    with session_scope(engine) as session:
        handoff = session.get(Handoff, handoff_id)
        assert handoff is not None
        session.expunge(handoff)
        return handoff


def _due(engine: Engine, handoff_id: str) -> datetime | None:
    deadline = _handoff(engine, handoff_id).next_escalation_at
    return as_utc(deadline) if deadline is not None else None


def _moves(engine: Engine, handoff_id: str) -> list[dict[str, Any]]:
    with session_scope(engine) as session:
        statement = (
            select(Event)
            .where(Event.handoff_id == handoff_id, Event.type == "handoff_escalated")
            .order_by(col(Event.seq))
        )
        return [event.data["escalation"] for event in session.exec(statement) if event.data]


def _sweep_when_due(engine: Engine, handoff_id: str) -> int:
    deadline = _due(engine, handoff_id)
    assert deadline is not None
    assert sweep_escalations(engine=engine, now=deadline - timedelta(milliseconds=1)) == 0
    return sweep_escalations(engine=engine, now=deadline)


def test_levels_move_on_time_then_stop(engine: Engine) -> None:
    team_id = _two_levels(engine)
    handoff_id = _create(engine)
    created = _handoff(engine, handoff_id)
    assert created.escalation_level == 0
    assert _due(engine, handoff_id) == as_utc(created.created_at) + timedelta(seconds=2)
    assert _sweep_when_due(engine, handoff_id) == 1
    assert _moves(engine, handoff_id) == [
        {"level": 1, "loop": 0, "target": "all_seniors", "team_id": None, "mode": "broadcast"}
    ]
    moved = _handoff(engine, handoff_id)
    assert (moved.escalation_level, moved.escalation_loop, moved.next_escalation_at) == (1, 0, None)
    assert moved.escalation_target == {"target": "all_seniors", "team_id": None, "team_name": None}
    assert created.escalation_target == {
        "target": "domain_team",
        "team_id": team_id,
        "team_name": "Networking",
    }
    assert sweep_escalations(engine=engine, now=as_utc(moved.created_at) + timedelta(days=1)) == 0


def test_the_event_carries_the_moved_handoff(engine: Engine) -> None:
    _two_levels(engine)
    handoff_id = _create(engine)
    _sweep_when_due(engine, handoff_id)
    with session_scope(engine) as session:
        event = session.exec(select(Event).where(Event.type == "handoff_escalated")).one()
    assert event.actor_id is None
    assert event.handoff["escalation_level"] == 1
    assert event.handoff["escalation_target"]["target"] == "all_seniors"


def test_repeat_loops_then_stops(engine: Engine) -> None:
    _two_levels(engine, repeat=1)
    handoff_id = _create(engine)
    while _due(engine, handoff_id) is not None:
        assert _sweep_when_due(engine, handoff_id) == 1
    assert [(move["level"], move["loop"]) for move in _moves(engine, handoff_id)] == [
        (1, 0),
        (0, 1),
        (1, 1),
    ]
    # Each level is timed from when the previous one was due.
    created = as_utc(_handoff(engine, handoff_id).created_at)
    with session_scope(engine) as session:
        updated = as_utc(session.get(Handoff, handoff_id).updated_at)  # type: ignore[union-attr]
    assert updated == created + timedelta(seconds=2 + 5 + 2)


def test_concurrent_sweeps_record_one_move_per_level(engine: Engine) -> None:
    _two_levels(engine)
    handoff_ids = [_create(engine, f"sess-{n}") for n in range(8)]
    now = max(_due(engine, h) for h in handoff_ids)  # type: ignore[type-var]
    results: list[int] = []
    sweeps = [
        threading.Thread(target=lambda: results.append(sweep_escalations(engine=engine, now=now)))
        for _ in range(4)
    ]
    for sweep in sweeps:
        sweep.start()
    for sweep in sweeps:
        sweep.join()
    assert sum(results) == 8
    assert all(len(_moves(engine, h)) == 1 for h in handoff_ids)


def test_a_sweep_whose_list_is_stale_does_not_move_a_level_early(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers' sweeps list the same due handoff; the other one moves it first,
    to a level due later. This sweep must leave it there until that deadline
    (bench/soak.py found moves up to 2.4 s early)."""
    _two_levels(engine, repeat=1)
    handoff_id = _create(engine)
    now = _due(engine, handoff_id)
    real_move = escalation._move
    interfered: list[int] = []

    def another_sweep_first(session: Any, listed_id: str, at: datetime, *rest: Any) -> int:
        if interfered:  # the other sweep's own move
            return real_move(session, listed_id, at, *rest)
        interfered.append(0)
        interfered[0] = sweep_escalations(engine=engine, now=at)
        return real_move(session, listed_id, at, *rest)

    monkeypatch.setattr(escalation, "_move", another_sweep_first)
    assert sweep_escalations(engine=engine, now=now) == 0  # type: ignore[arg-type]
    assert interfered == [1]
    assert [(move["level"], move["loop"]) for move in _moves(engine, handoff_id)] == [(1, 0)]
    assert _due(engine, handoff_id) == now + timedelta(seconds=5)  # type: ignore[operator]


def test_a_claim_stops_it_and_a_release_starts_over(engine: Engine) -> None:
    _two_levels(engine, repeat=1)
    handoff_id = _create(engine)
    _sweep_when_due(engine, handoff_id)
    with session_scope(engine) as session:
        claim_handoff(
            session=session, principal=SENIOR, handoff_id=handoff_id, claim_lock=lambda _: None
        )
    assert _due(engine, handoff_id) is None
    assert sweep_escalations(engine=engine, now=FAR_FUTURE) == 0
    with session_scope(engine) as session:
        released = release_handoff(session=session, principal=SENIOR, handoff_id=handoff_id)
    assert (released.escalation_level, released.escalation_loop) == (0, 0)
    assert released.escalation_target.target == "domain_team"
    assert released.next_escalation_at is not None
    restarted = released.next_escalation_at - released.updated_at
    assert abs(restarted - timedelta(seconds=2)) < timedelta(seconds=1)
    assert _sweep_when_due(engine, handoff_id) == 1
    assert [(move["level"], move["loop"]) for move in _moves(engine, handoff_id)] == [
        (1, 0),
        (1, 0),
    ]


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    """PostgreSQL only: SQLite transactions begin IMMEDIATE, so no write can fit
    between a sweep's read and its update there."""
    engine = make_engine(postgres_url)
    empty_tables(engine)
    yield engine
    engine.dispose()


def test_a_sweep_that_read_before_a_claim_and_release_changes_nothing(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep read (level 0, loop 0, deadline T); before its UPDATE the handoff
    is claimed and released, so it is at level 0, loop 0 again with a later
    deadline. The UPDATE's condition on the deadline read refuses the stale move."""
    engine = postgres_engine
    _two_levels(engine)
    handoff_id = _create(engine)
    stale = _due(engine, handoff_id)
    real_next_move = escalation._next_move
    interfered: list[bool] = []

    def claim_and_release_first(handoff: Handoff, level: int, loop: int) -> Any:
        if not interfered:
            interfered.append(True)
            with session_scope(engine) as session:
                claim_handoff(
                    session=session,
                    principal=SENIOR,
                    handoff_id=handoff_id,
                    claim_lock=lambda _: None,
                )
                release_handoff(session=session, principal=SENIOR, handoff_id=handoff_id)
        return real_next_move(handoff, level, loop)

    monkeypatch.setattr(escalation, "_next_move", claim_and_release_first)
    assert sweep_escalations(engine=engine, now=stale) == 0  # type: ignore[arg-type]
    assert interfered and _moves(engine, handoff_id) == []
    assert _handoff(engine, handoff_id).escalation_level == 0
    assert _due(engine, handoff_id) != stale


def test_a_cancellation_stops_it(engine: Engine) -> None:
    _two_levels(engine)
    handoff_id = _create(engine)
    deadline = _due(engine, handoff_id)
    with session_scope(engine) as session:
        cancel_handoff(session=session, principal=JUNIOR, handoff_id=handoff_id)
    assert _due(engine, handoff_id) is None
    assert sweep_escalations(engine=engine, now=deadline) == 0  # type: ignore[arg-type]


def test_a_policy_change_leaves_open_handoffs_alone(engine: Engine) -> None:
    _two_levels(engine)
    handoff_id = _create(engine)
    _policy(engine, [_level(600)])  # one level, no repeat: new handoffs never move
    later_id = _create(engine, "sess-2")
    assert _due(engine, later_id) is None
    assert _sweep_when_due(engine, handoff_id) == 1
    assert _handoff(engine, handoff_id).escalation_level == 1


def test_without_a_policy_nothing_moves(engine: Engine) -> None:
    """The default policy is one level, all seniors, with no repeat: there is no
    next level, so no ``handoff_escalated`` (the claim SLA still fires)."""
    handoff_id = _create(engine)
    handoff = _handoff(engine, handoff_id)
    assert handoff.next_escalation_at is None
    assert handoff.escalation_levels == [
        {
            "after_seconds": SLA_SECONDS,
            "target": "all_seniors",
            "team_id": None,
            "team_name": None,
            "mode": "broadcast",
        }
    ]
    assert sweep_escalations(engine=engine, now=FAR_FUTURE) == 0


def test_domain_team_resolves_to_the_owner_or_all_seniors(engine: Engine) -> None:
    networking = _team(engine, domains=("networking",))
    storage = _team(engine, "Storage")
    _policy(engine, [_level(60, "domain_team"), _level(60, "team", team_id=storage)])
    owned = _handoff(engine, _create(engine, "sess-1", domain="networking"))
    unowned = _handoff(engine, _create(engine, "sess-2", domain="databases"))
    assert owned.escalation_target == {
        "target": "domain_team",
        "team_id": networking,
        "team_name": "Networking",
    }
    assert unowned.escalation_target == {
        "target": "all_seniors",
        "team_id": None,
        "team_name": None,
    }
    assert unowned.escalation_levels is not None
    assert unowned.escalation_levels[1]["team_id"] == storage
    assert unowned.escalation_levels[1]["team_name"] == "Storage"


def test_handoffs_from_before_levels_never_move(engine: Engine) -> None:
    """Rows migrated from before levels: no copied levels, level 0, no deadline."""
    handoff_id = _create(engine)
    with session_scope(engine) as session:
        handoff = session.get(Handoff, handoff_id)
        assert handoff is not None
        handoff.escalation_levels = None
        session.add(handoff)
        session.commit()
    handoff = _handoff(engine, handoff_id)
    assert handoff.escalation_target == {
        "target": "all_seniors",
        "team_id": None,
        "team_name": None,
    }
    assert sweep_escalations(engine=engine, now=FAR_FUTURE) == 0


def _history(engine: Engine, handoff_id: str) -> list[tuple[str, Any]]:
    """The handoff's escalated and assigned events, in ``seq`` order."""
    with session_scope(engine) as session:
        statement = (
            select(Event)
            .where(
                Event.handoff_id == handoff_id,
                col(Event.type).in_(["handoff_escalated", "handoff_assigned"]),
            )
            .order_by(col(Event.seq))
        )
        return [
            (
                event.type,
                (event.data or {}).get("escalation") or (event.data or {}).get("assignment"),
            )
            for event in session.exec(statement)
        ]


def test_a_handoff_several_levels_overdue_catches_up_in_one_sweep(engine: Engine) -> None:
    """Levels of 2, 5 and 7 s, repeat 1. A sweep 16.5 s after creation (the first
    for this handoff: a worker was down, say) makes every move due by then, each
    once and in order; the next deadline counts from when each level was due."""
    _policy(engine, [_level(2), _level(5), _level(7)], repeat=1)
    handoff_id = _create(engine)
    created = as_utc(_handoff(engine, handoff_id).created_at)
    now = created + timedelta(seconds=16.5)

    assert sweep_escalations(engine=engine, now=now) == 4
    assert [(move["level"], move["loop"]) for move in _moves(engine, handoff_id)] == [
        (1, 0),  # due at 2 s
        (2, 0),  # 7 s
        (0, 1),  # 14 s
        (1, 1),  # 16 s
    ]
    assert _due(engine, handoff_id) == created + timedelta(seconds=16 + 5)
    assert sweep_escalations(engine=engine, now=now) == 0  # once per level and loop

    assert sweep_escalations(engine=engine, now=FAR_FUTURE) == 1  # (2, 1), the last
    assert _due(engine, handoff_id) is None
    assert len(_moves(engine, handoff_id)) == 5


def test_catching_up_through_an_assign_level_still_assigns(engine: Engine) -> None:
    """An assign-mode level passed in the same sweep is assigned on reaching it
    (the nudge is in the history) and the assignment ends with the next move."""
    _policy(engine, [_level(1), _level(1, mode="assign"), _level(60)])
    handoff_id = _create(engine)
    created = as_utc(_handoff(engine, handoff_id).created_at)

    def present(org_id: str) -> list[tuple[str, str]]:
        return [(SENIOR.user_id, SENIOR.name)] if org_id == "acme" else []

    assert (
        sweep_escalations(engine=engine, now=created + timedelta(seconds=2.5), present=present) == 2
    )
    history = _history(engine, handoff_id)
    assert [event_type for event_type, _ in history] == [
        "handoff_escalated",
        "handoff_assigned",
        "handoff_escalated",
    ]
    assert (history[0][1]["level"], history[0][1]["mode"]) == (1, "assign")
    assert history[1][1] == {
        "assigned_to_id": SENIOR.user_id,
        "assigned_to_name": SENIOR.name,
        "level": 1,
        "loop": 0,
    }
    assert (history[2][1]["level"], history[2][1]["mode"]) == (2, "broadcast")
    moved = _handoff(engine, handoff_id)
    assert (moved.escalation_level, moved.assigned_to_id) == (2, None)


def test_concurrent_sweeps_catch_up_once_per_level(engine: Engine) -> None:
    _policy(engine, [_level(1), _level(1), _level(1)], repeat=1)
    handoff_ids = [_create(engine, f"sess-{n}") for n in range(6)]
    now = FAR_FUTURE
    results: list[int] = []
    sweeps = [
        threading.Thread(target=lambda: results.append(sweep_escalations(engine=engine, now=now)))
        for _ in range(4)
    ]
    for sweep in sweeps:
        sweep.start()
    for sweep in sweeps:
        sweep.join()
    everything = [(1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert sum(results) == len(handoff_ids) * len(everything)
    for handoff_id in handoff_ids:
        assert [(m["level"], m["loop"]) for m in _moves(engine, handoff_id)] == everything


def test_the_next_deadline_is_the_earliest_pending_one(engine: Engine) -> None:
    assert escalation.next_escalation_due(engine=engine) is None
    _two_levels(engine)
    first = _create(engine, "sess-1")
    second = _create(engine, "sess-2")
    assert escalation.next_escalation_due(engine=engine) == _due(engine, first)
    with session_scope(engine) as session:
        claim_handoff(
            session=session, principal=SENIOR, handoff_id=first, claim_lock=lambda _: None
        )
    assert escalation.next_escalation_due(engine=engine) == _due(engine, second)
