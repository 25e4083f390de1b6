"""``handoff_public`` (snapshot validated once per process) gives exactly what
validating the row from its attributes gives, in every state a handoff reaches;
so does ``public_from_rows`` (plain rows, the snapshot read only on a cache miss)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from shared.auth.tokens import Principal
from shared.core.db import session_scope
from shared.core.models import Role
from shared.events.models import Event
from shared.events.record import event_json
from shared.handoffs import queries
from shared.handoffs.lifecycle import _new_handoff
from shared.handoffs.models import Handoff, HandoffCreate, HandoffPublic, HandoffStatus
from shared.handoffs.views import (
    SUMMARY_COLUMNS,
    JsonCache,
    SnapshotCache,
    handoff_public,
    handoff_summary,
    public_from_rows,
    public_json_from_rows,
    select_public,
    stored_summary,
    stored_summary_json,
    summary_of_columns,
)
from shared.routing.escalation import Plan
from testkit.samples import handoff_body, long_handoff_body

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


# --- the slim view events carry (issue 18, item 7) ------------------------------------


def at_every_limit() -> Handoff:
    """Claimed, assigned, at a team's level: every string the slim view keeps at
    its longest (ASCII), and every long field it leaves out at its limit too."""
    body = HandoffCreate.model_validate(long_handoff_body())
    body.snapshot.problem_domain, body.snapshot.status = "d" * 64, "s" * 64
    principal = Principal(user_id="e" * 128, name="E" * 256, role=Role.engineer, org_id="o" * 128)
    team_level = {"after_seconds": 60, "target": "team", "team_id": "t" * 36, "team_name": "T" * 64}
    handoff = claimed_and_assessed(_new_handoff(principal, body, 300, Plan([team_level], 5)))
    handoff.id, handoff.session_id = "i" * 36, "x" * 128
    handoff.claimed_by_id, handoff.claimed_by_name = "c" * 128, "C" * 256
    handoff.assigned_to_id, handoff.assigned_to_name = "a" * 128, "A" * 256
    handoff.resolution_notes = "r" * 10_000
    return handoff


def test_the_slim_view_is_bounded_whatever_the_long_fields() -> None:
    """At most ~4.5 KB of JSON for ASCII text, with 1 MB of transcript, tried steps
    and notes left out; a reassignment event around it (a 2,000-character note,
    every name at 256) stays under 8 KiB."""
    handoff = at_every_limit()
    summary = handoff_summary(handoff)
    assert summary["snapshot"]["tried_step_count"] == 200
    assert summary["snapshot"]["transcript_message_count"] == 500
    assert not {"engineer_notes", "resolution_notes", "ai_assessment_data"} & set(summary)
    assert len(json.dumps(summary, separators=(",", ":"))) <= 4_600
    note = {"from_id": "f" * 128, "from_name": "F" * 256, "to_id": "t" * 128, "to_name": "T" * 256}
    event = Event(
        org_id=handoff.org_id, seq=2**40, type="handoff_reassigned", handoff_id=handoff.id,
        actor_id="a" * 128, actor_name="A" * 256, at=datetime.now(UTC), handoff=summary,
        request_id="q" * 64, data={"reassignment": {**note, "note": "n" * 2_000}},
    )  # fmt: skip
    assert len(event_json(event).encode()) < 8 * 1024


@pytest.mark.parametrize("state", [lambda h: h, claimed_and_assessed])
def test_the_summary_of_its_columns_is_the_summary_of_the_handoff(state) -> None:
    """The worker's store builds the event's summary from a row, no ``Handoff``."""
    handoff = state(new_handoff())
    handoff.escalation_levels = [
        {"after_seconds": 0, "target": "team", "team_id": "t-1", "team_name": "DB", "mode": "all"}
    ]
    columns = {name: getattr(handoff, name) for name in SUMMARY_COLUMNS}
    summary = summary_of_columns(columns)
    assert summary == handoff_summary(handoff)
    assert summary["escalation_target"]["team_id"] == "t-1"
    assert json.dumps(summary) == json.dumps(handoff_summary(handoff))  # same order too


def test_a_full_handoff_stored_by_an_older_version_slims_to_the_same_view() -> None:
    handoff = at_every_limit()
    full = handoff_public(handoff).model_dump(mode="json")
    assert stored_summary(full) == handoff_summary(handoff)
    for separators in ((",", ":"), (", ", ": ")):  # ours, and SQLAlchemy's default
        text = json.dumps(full, separators=separators)
        assert json.loads(stored_summary_json(text)) == handoff_summary(handoff)


def test_slim_json_is_passed_through_untouched() -> None:
    """Not decoded: the text comes back as it is, even when a summary quotes the
    key that marks a full handoff."""
    handoff = new_handoff()
    handoff.snapshot = {**handoff.snapshot, "problem_summary": 'says "engineer_notes": x'}
    text = json.dumps(handoff_summary(handoff))
    assert stored_summary_json(text) is text


# --- each row's JSON kept per process (issue 23) -----------------------------------------


def test_kept_json_is_the_models_json_and_follows_every_change(engine: Engine) -> None:
    """A row's kept JSON is ``model_dump_json()`` of its model; a change of any
    kind (one that leaves ``updated_at`` alone too: an SLA breach, an erased
    name, a purge) reads as the new JSON, never the kept one."""
    stored = claimed_and_assessed(new_handoff("sess-json"))
    with session_scope(engine) as session:
        session.add(stored)
        session.commit()
        handoff_id = stored.id
    table = Handoff.__table__  # type: ignore[attr-defined]
    later = datetime.now(UTC) + timedelta(minutes=5)
    changes = [
        {"sla_breached_at": later},
        {"created_by_name": "[erased]"},
        {"claimed_by_name": "[erased]", "claimed_by_id": "sen-2"},
        {"escalation_level": 1},
        {"purged_at": later},
    ]

    def both() -> tuple[list[str], list[str]]:
        with engine.connect() as connection:
            rows = connection.execute(select_public().where(table.c.id == handoff_id)).all()
            return (
                public_json_from_rows(connection, rows),
                [public.model_dump_json() for public in public_from_rows(connection, rows)],
            )

    seen = set()
    for change in [{}, *changes]:
        if change:
            with engine.begin() as connection:
                connection.execute(table.update().where(table.c.id == handoff_id).values(change))
        kept, built = both()
        assert kept == built
        assert both()[0] == built  # from the cache the second time
        seen.add(kept[0])
    assert len(seen) == 1 + len(changes)


def test_the_page_json_is_the_page_models_json(engine: Engine) -> None:
    handoffs = [new_handoff(f"sess-page-{n}") for n in range(5)]
    for handoff in handoffs:
        handoff.org_id = "org-page"
    with session_scope(engine) as session:
        session.add_all(handoffs)
        session.commit()
    filters = {"org_id": "org-page", "status": None, "domain": None}

    def page_and_text(limit: int, cursor: str | None) -> tuple[str, str]:
        model = queries.list_handoffs(connection=connection, limit=limit, cursor=cursor, **filters)
        text = queries.list_handoffs_json(
            connection=connection, limit=limit, cursor=cursor, **filters
        )
        return model.model_dump_json(), text

    with engine.connect() as connection:
        first, first_text = page_and_text(2, None)
        assert first_text == first
        cursor = json.loads(first)["next_cursor"]
        assert cursor is not None
        assert page_and_text(2, cursor)[1] == page_and_text(2, cursor)[0]
        everything, everything_text = page_and_text(10, None)
        assert everything_text == everything
        items = json.loads(everything_text)["items"]
        assert json.loads(everything_text)["next_cursor"] is None and len(items) == 5
        one = queries.get_handoff_json(
            connection=connection, org_id="org-page", handoff_id=handoffs[0].id
        )
        assert json.loads(one) in items


def test_kept_json_is_bounded_by_rows_and_characters() -> None:
    cache = JsonCache(max_size=3, max_characters=10)
    for key, text in [(("a",), "1234"), (("b",), "5678"), (("c",), "90")]:
        cache.keep(key, text)
    assert cache.get_many([("a",), ("b",), ("c",)]) == ["1234", "5678", "90"]
    cache.keep(("d",), "abcd")  # 14 characters: "a", the least recently used, goes
    assert cache.get_many([("a",), ("b",), ("c",), ("d",)]) == [None, "5678", "90", "abcd"]
    cache.keep(("e",), "x" * 11)  # larger than the whole bound: not kept
    assert cache.get(("e",)) is None and cache.get(("d",)) == "abcd"
