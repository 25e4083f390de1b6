"""Creates as one statement on PostgreSQL (``shared.handoffs.one_statement``), on
both databases: a policy set after an org's creates without one applies to the
next create; the Slack messages of a create are the rows ``note_event`` writes
(one per channel, also when the level's team posts to the org's channel); a
refused second open handoff writes nothing."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue
from sqlalchemy import Engine, event, func
from sqlmodel import select

from shared.assessments.reconciler import reconcile_assessments
from shared.core import keys
from shared.core.db import session_scope
from shared.core.settings import Settings
from shared.events.models import Event, OrgEventCounter
from shared.slack.models import SlackMessage
from testkit.procs import poll
from tests.api.helpers import create, with_snapshot
from tests.api.test_slack import connect, slack_client, stub  # noqa: F401 (fixtures)
from tests.conftest import TokenFactory, handoff_body

POLICY = "/api/v1/escalation-policy"


def _team_policy(client: TestClient, auth: TokenFactory, **team: object) -> str:
    admin = auth("admin")
    body = {"name": "Networking", "members": [], "domains": ["networking"], **team}
    answer = client.post("/api/v1/teams", json=body, headers=admin)
    assert answer.status_code == 201, answer.text
    levels = [{"after_seconds": 60, "target": "domain_team", "mode": "broadcast"}]
    policy = client.put(POLICY, json={"levels": levels, "repeat": 0}, headers=admin)
    assert policy.status_code == 200, policy.text
    return str(answer.json()["id"])


def test_a_policy_set_after_creates_without_one_applies_to_the_next(
    client: TestClient, auth: TokenFactory
) -> None:
    networking = with_snapshot(problem_domain="networking")
    first = create(client, auth("engineer"), snapshot=networking, session_id="s-1")
    assert first["escalation_target"]["target"] == "all_seniors"
    team_id = _team_policy(client, auth)

    second = create(client, auth("engineer"), snapshot=networking, session_id="s-2")

    assert second["escalation_target"]["team_id"] == team_id
    assert second["next_escalation_at"] is None  # one level, no repeat


def test_a_refused_second_open_handoff_writes_nothing(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    create(client, auth("engineer"), session_id="s-open")
    again = client.post("/api/v1/handoffs", json=handoff_body("s-open"), headers=auth("engineer"))

    assert again.status_code == 409, again.text
    assert again.json()["error"] == "session_already_escalated"
    with session_scope(engine) as session:
        events = session.exec(select(func.count()).select_from(Event)).one()
        counter = session.exec(select(OrgEventCounter)).one()
    assert (events, counter.last_seq) == (1, 1)


def test_slack_messages_one_per_channel(
    slack_client: TestClient,  # noqa: F811 (a fixture)
    auth: TokenFactory,
    engine: Engine,
) -> None:
    connect(slack_client, auth)
    networking = with_snapshot(problem_domain="networking")
    plain = create(slack_client, auth("engineer"), session_id="s-plain")
    _team_policy(slack_client, auth, slack_channel="C0QUEUE")  # the org's own channel
    same = create(slack_client, auth("engineer"), snapshot=networking, session_id="s-same")
    team = slack_client.post(
        "/api/v1/teams",
        json={"name": "Edge", "members": [], "domains": ["edge"], "slack_channel": "C0EDGE"},
        headers=auth("admin"),
    )
    assert team.status_code == 201, team.text
    levels = [{"after_seconds": 60, "target": "domain_team", "mode": "broadcast"}]
    slack_client.put(POLICY, json={"levels": levels, "repeat": 0}, headers=auth("admin"))
    edge = create(
        slack_client,
        auth("engineer"),
        snapshot=with_snapshot(problem_domain="edge"),
        session_id="s-edge",
    )

    with session_scope(engine) as session:
        rows = session.exec(select(SlackMessage.handoff_id, SlackMessage.channel)).all()
    channels: dict[str, set[str]] = {}
    for handoff_id, channel in rows:
        channels.setdefault(handoff_id, set()).add(channel)
    assert len(rows) == 4
    assert channels == {
        plain["id"]: {"C0QUEUE"},
        same["id"]: {"C0QUEUE"},
        edge["id"]: {"C0QUEUE", "C0EDGE"},
    }


def test_the_create_statement_runs_on_the_driver(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    """Not through SQLAlchemy's fallback, which runs it again only after a driver
    error (a JSON parameter the driver could not adapt had sent every create there)."""
    app_engine = client.app.state.engine  # type: ignore[attr-defined]
    through_sqlalchemy: list[str] = []

    def record(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        through_sqlalchemy.append(statement)

    event.listen(app_engine, "before_cursor_execute", record)
    try:
        create(client, auth("engineer"), session_id="s-driver")
    finally:
        event.remove(app_engine, "before_cursor_execute", record)

    inserts = [s for s in through_sqlalchemy if s.lstrip().startswith("WITH")]
    if engine.dialect.name == "postgresql":
        assert inserts == []
    else:  # SQLite has no one statement: the ORM path inserts
        assert any("INSERT INTO handoffs" in s for s in through_sqlalchemy)


def test_redis_failing_after_the_insert_loses_no_event_and_no_job(
    client: TestClient,
    auth: TokenFactory,
    engine: Engine,
    redis: Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fault lands where the create's publish and enqueue go out together
    (the rate limit, before the insert, went through): the create is answered,
    the relay publishes its event from the log, the reconciler enqueues its job."""
    execute = Pipeline.execute

    def fail_the_batch(pipe: Pipeline, raise_on_error: bool = True) -> list[Any]:
        if not pipe.transaction:  # ``batched_scripts``' pipeline
            raise RedisConnectionError("Redis went away")
        return execute(pipe, raise_on_error=raise_on_error)

    monkeypatch.setattr(Pipeline, "execute", fail_the_batch)
    handoff = create(client, auth("engineer"), session_id="s-fault")
    monkeypatch.undo()

    poll(
        lambda: _published(engine, handoff["id"]), timeout=10, what="the event relayed from the log"
    )
    queue = Queue(keys.ASSESSMENTS_QUEUE, connection=redis)
    assert queue.get_job_ids() == []  # the enqueue failed with the publish
    report = reconcile_assessments(engine=engine, redis=redis, settings=settings)
    assert report.enqueued == 1
    assert queue.get_job_ids() == [keys.assessment_job_id(handoff["id"])]


def _published(engine: Engine, handoff_id: str) -> bool:
    with session_scope(engine) as session:
        event = session.exec(select(Event).where(Event.handoff_id == handoff_id)).one()
    return event.published_at is not None
