"""``handoff_public`` (snapshot validated once per process) gives exactly what
validating the row from its attributes gives, in every state a handoff reaches;
so does ``public_from_rows`` (plain rows, the snapshot read only on a cache miss)."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from shared.auth import Principal
from shared.db import session_scope
from shared.escalation import Plan
from shared.handoff_views import SnapshotCache, handoff_public, public_from_rows, select_public
from shared.handoffs import _new_handoff
from shared.models import Handoff, HandoffCreate, HandoffPublic, HandoffStatus, Role
from tests.samples import handoff_body

ENGINEER = Principal(user_id="eng-1", name="Eve", role=Role.engineer, org_id="org-1")


def new_handoff(session_id: str = "sess-1") -> Handoff:
    body = HandoffCreate.model_validate(handoff_body(session_id))
    return _new_handoff(ENGINEER, body, 300, Plan(levels=[], repeat=0))


def claimed_and_assessed(handoff: Handoff) -> Handoff:
    now = datetime.now(UTC)
    handoff.status = HandoffStatus.claimed.value
    handoff.claimed_by_id, handoff.claimed_by_name, handoff.claimed_at = "sen-1", "Sam", now
    handoff.assessment_status = "ready"
    handoff.ai_assessment_data = {
        "summary": "OOM",
        "likely_causes": ["memory limit"],
        "suggested_steps": ["raise the limit"],
        "confidence": "medium",
        "generator": "heuristic",
        "generated_at": now.isoformat(),
    }
    handoff.sla_breached_at = now + timedelta(seconds=1)
    return handoff


@pytest.mark.parametrize("state", [lambda h: h, claimed_and_assessed])
def test_the_same_model_as_validating_the_row(state) -> None:
    handoff = state(new_handoff())
    expected = HandoffPublic.model_validate(handoff, from_attributes=True)
    assert handoff_public(handoff) == expected
    assert handoff_public(handoff).model_dump_json() == expected.model_dump_json()


def test_the_cache_keeps_the_most_recently_used_snapshots() -> None:
    cache = SnapshotCache(max_size=2)
    first, second, third = (new_handoff(f"sess-{n}") for n in range(3))
    kept = cache.get(first)
    cache.get(second)
    assert cache.get(first) is kept  # used again: now the most recent
    cache.get(third)  # evicts second, the least recently used
    assert cache.get(first) is kept
    assert cache.get(second) is not cache.get(third)


def test_plain_rows_give_the_same_models_as_the_orm(engine: Engine) -> None:
    levels = [{"target": "team", "team_id": "t-1", "team_name": "Platform", "mode": "broadcast"}]
    stored = [new_handoff("sess-a"), claimed_and_assessed(new_handoff("sess-b"))]
    stored[1].escalation_levels = levels
    with session_scope(engine) as session:
        session.add_all(stored)
        session.commit()
        session.expire_all()  # the ORM's models of the rows as read back
        ids = [handoff.id for handoff in stored]
        expected = [HandoffPublic.model_validate(h, from_attributes=True) for h in stored]
    with engine.connect() as connection:
        statement = select_public().where(Handoff.__table__.c.id.in_(ids))  # type: ignore[attr-defined]
        rows = sorted(connection.execute(statement).all(), key=lambda row: ids.index(row.id))
        first = public_from_rows(connection, rows)  # new ids: the snapshots are read
        again = public_from_rows(connection, rows)  # now from the cache
    assert first == again == expected
    assert [p.model_dump_json() for p in again] == [p.model_dump_json() for p in expected]
    assert again[1].escalation_target.team_name == "Platform"
