"""The worker's maintenance thread wakes for the next level's deadline, not only
on its interval: with a 60 s interval, a handoff under three 1 s levels (created
before the thread starts: a new handoff's first deadline waits for the next
tick at worst) still moves at about 1 s and 2 s. Real database, real Redis,
the thread itself; tests/e2e/test_levels_on_time.py checks the whole bound at
the default interval with real processes."""

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from services.worker.context import WorkerContext
from services.worker.main import PeriodicMaintenance
from shared.audit import SYSTEM
from shared.auth.tokens import Principal
from shared.core.db import session_scope
from shared.core.models import Role
from shared.core.settings import Settings
from shared.core.timeutil import as_utc
from shared.events.models import Event
from shared.handoffs.lifecycle import create_handoff
from shared.handoffs.models import Handoff, HandoffCreate
from shared.routing.models import EscalationPolicyBody
from shared.routing.policies import put_policy
from testkit.procs import poll
from tests.conftest import handoff_body

INTERVAL_SECONDS = 60.0
#: The thread wakes at the deadline; a busy two-core machine may add a little.
LATE_BOUND = timedelta(seconds=1)
JUNIOR = Principal(user_id="u-1", name="Jo Junior", role=Role.engineer, org_id="acme")


@pytest.fixture
def start_maintenance(settings: Settings, engine: Engine) -> Iterator[Callable[[], None]]:
    context = WorkerContext.build(
        settings.model_copy(
            update={"assessor": "heuristic", "maintenance_interval_seconds": INTERVAL_SECONDS}
        )
    )
    thread = PeriodicMaintenance(context)
    yield thread.start
    thread.stop()
    if thread.is_alive():
        thread.join(timeout=10)
    context.close()


def _create_under_three_1_s_levels(engine: Engine) -> tuple[str, datetime]:
    level = {"after_seconds": 1, "target": "all_seniors", "mode": "broadcast"}
    body = EscalationPolicyBody.model_validate({"levels": [level] * 3, "repeat": 0})
    with session_scope(engine) as session:
        put_policy(session=session, actor=SYSTEM, org_id="acme", body=body)
    with session_scope(engine) as session:
        handoff, _ = create_handoff(
            session=session,
            principal=JUNIOR,
            body=HandoffCreate.model_validate(handoff_body("sess-wake")),
            claim_sla_seconds=300,
        )
        assert handoff.next_escalation_at is not None
        return handoff.id, as_utc(handoff.next_escalation_at) - timedelta(seconds=1)


def _moved_at(engine: Engine, handoff_id: str) -> list[datetime]:
    with session_scope(engine) as session:
        statement = (
            select(Event.at)
            .where(Event.handoff_id == handoff_id, Event.type == "handoff_escalated")
            .order_by(col(Event.seq))
        )
        return [as_utc(at) for at in session.exec(statement)]


def test_the_thread_wakes_for_each_deadline(
    start_maintenance: Callable[[], None], engine: Engine
) -> None:
    handoff_id, start = _create_under_three_1_s_levels(engine)
    start_maintenance()
    poll(lambda: len(_moved_at(engine, handoff_id)) == 2, timeout=10, what="two moves")
    for n, landed in enumerate(_moved_at(engine, handoff_id), start=1):
        due = start + timedelta(seconds=n)
        assert due <= landed <= due + LATE_BOUND, (n, landed - due)
    with session_scope(engine) as session:
        moved = session.get(Handoff, handoff_id)
        assert moved is not None and moved.escalation_level == 2
