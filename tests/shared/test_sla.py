"""The claim SLA on a real database: one breach per late handoff, none for a
handoff claimed or cancelled in time, judged from stored times alone."""

import threading
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import select

from shared.auth.tokens import Principal
from shared.core.db import session_scope
from shared.core.models import Role
from shared.core.timeutil import as_utc, utcnow
from shared.events.models import Event
from shared.handoffs.claims import claim_handoff, release_handoff
from shared.handoffs.lifecycle import cancel_handoff, create_handoff
from shared.handoffs.models import Handoff, HandoffCreate
from shared.routing.sla import sweep_sla_breaches
from tests.conftest import handoff_body

SLA_SECONDS = 300
JUNIOR = Principal(user_id="u-1", name="Jo Junior", role=Role.engineer, org_id="acme")
SENIOR = Principal(user_id="u-2", name="Dana Senior", role=Role.senior, org_id="acme")


def _create(engine: Engine, session_id: str = "sess-1") -> str:
    with session_scope(engine) as session:
        handoff, _ = create_handoff(
            session=session,
            principal=JUNIOR,
            body=HandoffCreate.model_validate(handoff_body(session_id)),
            claim_sla_seconds=SLA_SECONDS,
        )
    return handoff.id


def _claim(engine: Engine, handoff_id: str) -> None:
    with session_scope(engine) as session:
        claim_handoff(
            session=session, principal=SENIOR, handoff_id=handoff_id, claim_lock=lambda _: None
        )


def _breach_events(engine: Engine, handoff_id: str) -> list[Event]:
    with session_scope(engine) as session:
        statement = select(Event).where(
            Event.handoff_id == handoff_id, Event.type == "handoff_sla_breached"
        )
        return list(session.exec(statement))


def _deadline(engine: Engine, handoff_id: str):  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return as_utc(session.get(Handoff, handoff_id).claim_deadline_at)


def test_deadline_is_creation_plus_the_sla(engine: Engine) -> None:
    before = utcnow()
    handoff_id = _create(engine)
    deadline = _deadline(engine, handoff_id)
    assert (
        before + timedelta(seconds=SLA_SECONDS)
        <= deadline
        <= utcnow() + timedelta(seconds=SLA_SECONDS)
    )


def test_an_unclaimed_handoff_breaches_exactly_once(engine: Engine) -> None:
    handoff_id = _create(engine)
    deadline = _deadline(engine, handoff_id)
    assert sweep_sla_breaches(engine=engine, now=deadline - timedelta(seconds=1)) == 0
    assert sweep_sla_breaches(engine=engine, now=deadline) == 1
    assert sweep_sla_breaches(engine=engine, now=deadline + timedelta(hours=1)) == 0
    (event,) = _breach_events(engine, handoff_id)
    assert event.handoff["status"] == "pending" and event.handoff["sla_breached_at"]


def test_a_handoff_claimed_in_time_never_breaches(engine: Engine) -> None:
    handoff_id = _create(engine)
    _claim(engine, handoff_id)
    with session_scope(engine) as session:  # released again: its first claim still counts
        release_handoff(session=session, principal=SENIOR, handoff_id=handoff_id)
    later = _deadline(engine, handoff_id) + timedelta(hours=1)
    assert sweep_sla_breaches(engine=engine, now=later) == 0
    assert _breach_events(engine, handoff_id) == []
    with session_scope(engine) as session:  # settled: out of the sweep's index for good
        assert session.get(Handoff, handoff_id).sla_settled_at is not None


def test_a_handoff_cancelled_in_time_never_breaches(engine: Engine) -> None:
    handoff_id = _create(engine)
    with session_scope(engine) as session:
        cancel_handoff(session=session, principal=JUNIOR, handoff_id=handoff_id)
    assert sweep_sla_breaches(engine=engine, now=_deadline(engine, handoff_id) + timedelta(1)) == 0


def test_a_late_claim_still_breaches_when_the_sweep_runs_after_it(engine: Engine) -> None:
    """Every sweeper was down past the deadline; the stored times still tell."""
    handoff_id = _create(engine)
    deadline = _deadline(engine, handoff_id)
    with session_scope(engine) as session:
        handoff = session.get(Handoff, handoff_id)
        handoff.claim_deadline_at = utcnow() - timedelta(seconds=1)  # the claim below is late
        session.add(handoff)
        session.commit()
    _claim(engine, handoff_id)
    assert sweep_sla_breaches(engine=engine, now=deadline) == 1


def test_concurrent_sweeps_record_one_breach_per_handoff(engine: Engine) -> None:
    handoff_ids = [_create(engine, f"sess-{n}") for n in range(10)]
    now = max(_deadline(engine, h) for h in handoff_ids)
    results: list[int] = []
    sweeps = [
        threading.Thread(target=lambda: results.append(sweep_sla_breaches(engine=engine, now=now)))
        for _ in range(4)
    ]
    for sweep in sweeps:
        sweep.start()
    for sweep in sweeps:
        sweep.join()
    assert sum(results) == 10
    assert all(len(_breach_events(engine, h)) == 1 for h in handoff_ids)
