"""Slim events (issue 18, item 7), on SQLite and PostgreSQL: an event carries the
handoff without its transcript, tried steps and notes, whatever their size; the
full handoff is one ``GET /handoffs/{id}`` away; and events stored before events
were slim (with the whole handoff) still read back, slimmed, through every path:
the history, replay after ``Last-Event-ID``, the relay's log and the webhook body."""

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import col, select

from shared.core.db import session_scope
from shared.core.settings import Settings
from shared.events.models import Event
from shared.events.record import event_json, replay_page
from shared.handoffs.models import Handoff
from shared.handoffs.views import handoff_public
from testkit.procs import GENEROUS_LIMITS
from testkit.samples import long_handoff_body
from tests.api.helpers import HANDOFFS, history, slim
from tests.conftest import REDIS_URL, TEST_SECRET, TokenFactory

EVENT_BYTES_MAX = 8 * 1024


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        jwt_secret=TEST_SECRET,
        max_body_bytes=2 * 2**20,  # a create with every long field at its limit
        **GENEROUS_LIMITS,
    )


def long_handoff(client: TestClient, auth: TokenFactory) -> dict[str, object]:
    """Created (about 1 MB), claimed and released: three events."""
    response = client.post(HANDOFFS, json=long_handoff_body(), headers=auth("engineer"))
    assert response.status_code == 201, response.text
    handoff = response.json()
    for action in ("claim", "release"):
        changed = client.post(f"{HANDOFFS}/{handoff['id']}/{action}", headers=auth("senior"))
        assert changed.status_code == 200, changed.text
    return handoff


def without_handoff(event: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in event.items() if key != "handoff"}


def replayed(engine: Engine) -> list[str]:
    """Every event from ``Last-Event-ID: 0``, page by page (an old 1 MB event
    fills a page of its own)."""
    texts: list[str] = []
    with session_scope(engine) as session:
        after, more = 0, True
        while more:
            page = replay_page(
                session, org_id="acme", after_seq=after, max_bytes=2**20, max_events=100
            )  # fmt: skip
            texts += [event.json for event in page.events]
            after, more = (page.events[-1].seq if page.events else after), page.more
    return texts


def test_events_of_a_1_mb_handoff_are_slim_and_the_rest_is_one_get_away(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    handoff = long_handoff(client, auth)
    full = client.get(f"{HANDOFFS}/{handoff['id']}", headers=auth("senior")).json()
    assert len(json.dumps(full)) > 1_000_000  # all of it, transcript included

    events = history(client, auth("senior"), handoff["id"])
    assert [event["type"] for event in events] == [
        "handoff_created",
        "handoff_claimed",
        "handoff_released",
    ]
    assert events[-1]["handoff"] == slim(full)
    streamed = replayed(engine)
    assert [json.loads(text) for text in streamed] == events  # replay and history agree
    assert max(len(text.encode()) for text in streamed) < EVENT_BYTES_MAX


def test_events_stored_with_the_whole_handoff_read_back_slim(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    """An event row written before events were slim holds the full ``HandoffPublic``
    (1 MB here): the history, replay and ``event_json`` (the relay's fast path and
    the webhook body) all give the slim view, the same as for a new event."""
    handoff = long_handoff(client, auth)
    before = history(client, auth("senior"), handoff["id"])
    with session_scope(engine) as session:
        row = session.exec(select(Handoff).where(Handoff.id == handoff["id"])).one()
        old_style = handoff_public(row).model_dump(mode="json")  # what record_event stored
        session.execute(
            update(Event).where(col(Event.handoff_id) == handoff["id"]).values(handoff=old_style)
        )
        session.commit()
        stored = session.exec(select(Event).order_by(col(Event.seq))).all()
        assert all(len(json.dumps(event.handoff)) > 1_000_000 for event in stored)
        from_events = [event_json(event) for event in stored]

    after = history(client, auth("senior"), handoff["id"])
    assert [event["handoff"] for event in after] == [slim(old_style)] * 3
    assert [without_handoff(event) for event in after] == [without_handoff(e) for e in before]
    streamed = replayed(engine)
    assert [json.loads(text) for text in streamed] == after
    assert [json.loads(text) for text in from_events] == after
    assert max(len(text.encode()) for text in streamed + from_events) < EVENT_BYTES_MAX


def test_a_purge_leaves_the_slim_events_slim_and_marks_them_purged(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    """Retention empties the copies of the content in events: a slim copy has none
    to empty, so it keeps its shape (and its counts) and gains ``purged_at``."""
    handoff = long_handoff(client, auth)
    url = f"{HANDOFFS}/{handoff['id']}"
    assert client.post(f"{url}/claim", headers=auth("senior")).status_code == 200
    notes = {"resolution_notes": "Raised the limit."}
    assert client.post(f"{url}/resolve", json=notes, headers=auth("senior")).status_code == 200
    purged = client.post(f"{url}/purge", headers=auth("admin"))
    assert purged.status_code == 200, purged.text

    events = history(client, auth("senior"), handoff["id"])
    streamed = [json.loads(text) for text in replayed(engine)]
    assert streamed == events
    for event in events:
        assert event["handoff"]["purged_at"] == purged.json()["purged_at"]
        snapshot = event["handoff"]["snapshot"]
        assert (snapshot["transcript_message_count"], snapshot["tried_step_count"]) == (500, 200)
        assert "tried_steps" not in snapshot and "transcript" not in snapshot
