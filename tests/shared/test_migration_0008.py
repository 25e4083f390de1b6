"""Migration 0008 on SQLite and PostgreSQL: handoffs written at 0007 get their
current level's team (so ``for=me`` sees them) and, when claimed, the level and
team of that claim; the migration downgrades and upgrades again cleanly."""

import json
import uuid
from datetime import timedelta
from typing import Any

from alembic import command
from sqlalchemy import DateTime, Engine, bindparam, text

from shared.core.db import make_engine, session_scope
from shared.core.migrate import alembic_config
from shared.core.timeutil import utcnow
from shared.handoffs.models import Handoff
from tests.conftest import handoff_body

LEVELS = [
    {"after_seconds": 60, "target": "team", "team_id": "t-db", "team_name": "DB", "mode": "assign"},
    {"after_seconds": 60, "target": "all_seniors", "team_id": None, "team_name": None,
     "mode": "broadcast"},
]  # fmt: skip


def _insert_at_0007(engine: Engine, *, status: str, level: int, claimed: bool) -> str:
    handoff_id, now = str(uuid.uuid4()), utcnow()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO handoffs (id, org_id, session_id, status, priority, priority_rank,"
                " problem_domain, created_by_id, created_by_name, created_at, updated_at,"
                " engineer_notes, snapshot, assessment_status, claim_deadline_at,"
                " first_claimed_at, escalation_levels, escalation_level)"
                " VALUES (:id, 'acme', :session, :status, 'normal', 2, 'db', 'u-1', 'Jo', :now,"
                " :now, '', :snapshot, 'pending', :now, :claimed_at, :levels, :level)"
            ).bindparams(
                bindparam("now", type_=DateTime(timezone=True)),
                bindparam("claimed_at", type_=DateTime(timezone=True)),
            ),
            {
                "id": handoff_id,
                "session": handoff_id,
                "status": status,
                "now": now,
                "claimed_at": now + timedelta(seconds=5) if claimed else None,
                "snapshot": json.dumps(handoff_body()["snapshot"]),
                "levels": json.dumps(LEVELS),
                "level": level,
            },
        )
    return handoff_id


def _routing(engine: Engine, handoff_id: str) -> tuple[Any, ...]:
    with session_scope(engine) as session:
        handoff = session.get(Handoff, handoff_id)
        assert handoff is not None
        return handoff.escalation_team_id, handoff.first_claim_level, handoff.first_claim_team_id


def test_handoffs_from_0007_get_their_team_and_first_claim(migrated_url: str) -> None:
    config = alembic_config(migrated_url)
    command.downgrade(config, "0007")
    engine = make_engine(migrated_url)
    pending_at_team = _insert_at_0007(engine, status="pending", level=0, claimed=False)
    claimed_at_all = _insert_at_0007(engine, status="claimed", level=1, claimed=True)
    command.upgrade(config, "head")
    assert _routing(engine, pending_at_team) == ("t-db", None, None)
    assert _routing(engine, claimed_at_all) == (None, 1, None)

    command.downgrade(config, "0007")  # and back: the downgrade leaves a usable 0007
    command.upgrade(config, "head")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM last_assignments")).scalar() == 0
    engine.dispose()
