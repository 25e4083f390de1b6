"""Migration 0007 on SQLite and PostgreSQL: a handoff written before it keeps
today's behaviour (level 0, no copied levels, all seniors, no next move, so the
escalation sweep never touches it), and the migration downgrades and upgrades
again cleanly."""

import json
import uuid
from datetime import timedelta

from alembic import command
from sqlalchemy import DateTime, bindparam, text

from shared.core.db import make_engine, session_scope
from shared.core.migrate import alembic_config
from shared.core.timeutil import utcnow
from shared.handoffs.models import Handoff
from shared.handoffs.views import handoff_public
from shared.routing.escalation import sweep_escalations
from tests.conftest import handoff_body


def test_a_handoff_from_before_0007_keeps_todays_behaviour(migrated_url: str) -> None:
    config = alembic_config(migrated_url)
    command.downgrade(config, "0006")
    engine = make_engine(migrated_url)
    handoff_id, now = str(uuid.uuid4()), utcnow()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO handoffs (id, org_id, session_id, status, priority, priority_rank,"
                " problem_domain, created_by_id, created_by_name, created_at, updated_at,"
                " engineer_notes, snapshot, assessment_status, claim_deadline_at)"
                " VALUES (:id, 'acme', 'sess-old', 'pending', 'normal', 2, 'networking',"
                " 'u-1', 'Jo Junior', :now, :now, '', :snapshot, 'pending', :deadline)"
            ).bindparams(  # typed: SQLAlchemy, not sqlite3's deprecated adapter, writes times
                bindparam("now", type_=DateTime(timezone=True)),
                bindparam("deadline", type_=DateTime(timezone=True)),
            ),
            {
                "id": handoff_id,
                "now": now,
                "deadline": now + timedelta(seconds=300),
                "snapshot": json.dumps(handoff_body()["snapshot"]),
            },
        )
    command.upgrade(config, "head")
    with session_scope(engine) as session:
        handoff = session.get(Handoff, handoff_id)
        assert handoff is not None
        public = handoff_public(handoff)
    assert (public.escalation_level, public.escalation_loop) == (0, 0)
    assert public.escalation_target.model_dump() == {
        "target": "all_seniors",
        "team_id": None,
        "team_name": None,
    }
    assert public.next_escalation_at is None and public.assigned_to_id is None
    assert sweep_escalations(engine=engine, now=now + timedelta(days=365)) == 0

    command.downgrade(config, "0006")  # and back: the downgrade leaves a usable 0006
    command.upgrade(config, "head")
    if engine.dialect.name == "sqlite":  # its table was rebuilt: partial indexes kept theirs
        with engine.connect() as connection:
            indexes = dict(
                connection.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'handoffs'")
                ).all()
            )
        assert "WHERE status IN" in indexes["uq_handoffs_open_session"]
        assert "WHERE next_escalation_at IS NOT NULL" in indexes["ix_handoffs_escalation_due"]
    engine.dispose()
