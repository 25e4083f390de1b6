"""Webhook deliveries in one process, on SQLite and PostgreSQL: the API writes
deliveries with their events, the dispatcher enqueues them into real Redis, the
service's RQ SimpleWorker sends them to a real local HTTP receiver. Signatures are
checked with our own HMAC code and with the ``standardwebhooks`` package; the
Slack body against a JSON schema of Slack's message shape; and each way a
receiver can misbehave costs one bounded try."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import standardwebhooks
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import Engine, text, update
from sqlmodel import select

from services.worker.context import WorkerContext, set_context
from services.worker.rq_classes import PromptSimpleWorker
from shared.audit import SYSTEM
from shared.auth.tokens import Principal
from shared.core import keys
from shared.core.db import session_scope
from shared.core.models import Role
from shared.core.redis_client import make_redis
from shared.core.settings import Settings
from shared.core.timeutil import utcnow
from shared.events.models import Event
from shared.events.record import event_json
from shared.handoffs.lifecycle import create_handoff
from shared.handoffs.models import HandoffCreate
from shared.webhooks import subscriptions
from shared.webhooks.dispatch import dispatch_due, reconcile_deliveries
from shared.webhooks.models import WebhookCreate, WebhookDelivery
from shared.webhooks.sender import MAX_RESPONSE_BYTES
from testkit.procs import GENEROUS_LIMITS, free_port
from testkit.samples import LONG_TRANSCRIPT, long_handoff_body
from testkit.webhook_receiver import BIG, BIG_BYTES, HANG, REDIRECT, Receiver
from tests.api.helpers import HANDOFFS, create
from tests.conftest import REDIS_URL, TEST_SECRET, TokenFactory, handoff_body

WEBHOOKS = "/api/v1/webhooks"
TIMEOUT_SECONDS = 1.0
INTERVALS = [0.05, 0.05]
PUBLIC_URL = "https://escalations.example.com"
SLACK_SCHEMA = json.loads((Path(__file__).parent / "slack_message.schema.json").read_text())


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        jwt_secret=TEST_SECRET,
        public_url=PUBLIC_URL,
        webhook_allow_private_networks=True,
        webhook_timeout_seconds=TIMEOUT_SECONDS,
        webhook_retry_intervals_seconds=INTERVALS,
        max_body_bytes=2 * 2**20,  # a create with every long field at its limit
        **GENEROUS_LIMITS,
    )


@pytest.fixture
def context(settings: Settings, engine: Engine, redis: Redis) -> Iterator[WorkerContext]:
    context = WorkerContext.build(settings)
    set_context(context)
    yield context
    set_context(None)
    context.close()


Work = Callable[[Callable[[], bool]], None]


@pytest.fixture
def work_until(context: WorkerContext, redis: Redis) -> Work:
    """Dispatch due deliveries and run the worker in bursts until ``done()``."""

    def run(done: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        queue = Queue(keys.NOTIFICATIONS_QUEUE, connection=redis)
        while not done():
            assert time.monotonic() < deadline, "the deliveries did not settle in time"
            dispatch_due(engine=context.engine, redis=redis, settings=context.settings)
            PromptSimpleWorker([queue], connection=redis).work(burst=True)
            time.sleep(0.02)  # a retry's back-off is 50 ms: poll the due time, not a guess

    return run


def subscribe(client: TestClient, auth: TokenFactory, url: str, **body: Any) -> dict[str, Any]:
    response = client.post(WEBHOOKS, json={"url": url, **body}, headers=auth("admin"))
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(client: TestClient, auth: TokenFactory, webhook_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{WEBHOOKS}/{webhook_id}/deliveries", headers=auth("admin"))
    assert response.status_code == 200, response.text
    return response.json()["items"]


def settled(client: TestClient, auth: TokenFactory, webhook_id: str, count: int = 1) -> Any:
    def check() -> bool:
        items = deliveries(client, auth, webhook_id)
        return len(items) >= count and all(item["status"] != "pending" for item in items)

    return check


def enqueued_job(client: TestClient, auth: TokenFactory, redis: Redis, webhook_id: str) -> Job:
    """The first try's job, once enqueued: by this test's ``dispatch_due`` or by
    the API's own dispatcher thread, which may have claimed the row first and
    enqueue a moment later."""
    [delivery] = deliveries(client, auth, webhook_id)
    job_id = keys.delivery_job_id(delivery["id"], 1)
    deadline = time.monotonic() + 10
    while not redis.exists(f"rq:job:{job_id}"):
        assert time.monotonic() < deadline, f"job {job_id} never enqueued"
        time.sleep(0.01)
    return Job.fetch(job_id, connection=redis)


def own_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# --- standard format ------------------------------------------------------------------


def test_a_standard_delivery_is_the_streamed_event_signed(
    client: TestClient, auth: TokenFactory, work_until: Work, engine: Engine
) -> None:
    with Receiver() as receiver:
        webhook = subscribe(client, auth, receiver.url(), events=["handoff_created"])
        handoff = create(client, auth("engineer"))
        work_until(settled(client, auth, webhook["id"]))
    [request] = receiver.hook_requests()
    [delivery] = deliveries(client, auth, webhook["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        1,
        200,
    )
    assert delivery["delivered_at"] and delivery["next_attempt_at"] is None
    with session_scope(engine) as session:
        stored = session.exec(select(Event).where(Event.handoff_id == handoff["id"])).one()
        assert request.body == event_json(stored).encode()  # exactly as on the stream
    headers = request.headers
    assert headers["webhook-id"] == delivery["id"]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"] == own_signature(webhook["secret"], headers, request.body)
    verified = standardwebhooks.Webhook(webhook["secret"]).verify(request.body, headers)
    assert verified["type"] == "handoff_created" and verified["handoff"]["id"] == handoff["id"]
    wrong = standardwebhooks.Webhook("whsec_" + base64.b64encode(b"k" * 32).decode())
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        wrong.verify(request.body, headers)


def test_jobs_read_well_in_rq_dashboard_and_metrics_move(
    client: TestClient, auth: TokenFactory, context: WorkerContext, redis: Redis, work_until: Work
) -> None:
    def count(outcome: str) -> float:
        labels = {"outcome": outcome, "format": "standard"}
        return REGISTRY.get_sample_value("escalations_webhook_deliveries_total", labels) or 0.0

    before = count("delivered")
    with Receiver() as receiver:
        webhook = subscribe(client, auth, receiver.url(), events=["handoff_created"])
        create(client, auth("engineer"))
        [delivery] = deliveries(client, auth, webhook["id"])
        work_until(settled(client, auth, webhook["id"]))
    job = Job.fetch(keys.delivery_job_id(delivery["id"], 1), connection=redis)
    assert job.description == (
        f"Deliver handoff_created to webhook {webhook['id']}"
        f" (org acme, delivery {delivery['id']}, try 1)"
    )
    assert job.meta == {
        "delivery_id": delivery["id"],
        "webhook_id": webhook["id"],
        "org_id": "acme",
        "event_type": "handoff_created",
        "attempt": 1,
    }
    assert job.origin == keys.NOTIFICATIONS_QUEUE
    assert count("delivered") == before + 1
    latency = REGISTRY.get_sample_value(
        "escalations_webhook_delivery_latency_seconds_count", {"format": "standard"}
    )
    assert latency and latency >= 1


def test_a_rotated_secret_signs_the_next_try(
    client: TestClient, auth: TokenFactory, work_until: Work
) -> None:
    with Receiver() as receiver:
        webhook = subscribe(client, auth, receiver.url())
        rotated = client.post(f"{WEBHOOKS}/{webhook['id']}/rotate-secret", headers=auth("admin"))
        test = client.post(f"{WEBHOOKS}/{webhook['id']}/test", headers=auth("admin"))
        assert test.status_code == 202
        work_until(settled(client, auth, webhook["id"]))
    [request] = receiver.hook_requests()
    standardwebhooks.Webhook(rotated.json()["secret"]).verify(request.body, request.headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(webhook["secret"]).verify(request.body, request.headers)
    body = json.loads(request.body)
    assert (body["type"], body["handoff"]) == ("webhook_test", None)
    assert body["data"]["webhook_id"] == webhook["id"]


def test_500_twice_then_200_is_three_tries_with_one_webhook_id(
    client: TestClient, auth: TokenFactory, work_until: Work
) -> None:
    with Receiver([500, 500, 200]) as receiver:
        webhook = subscribe(client, auth, receiver.url(), events=["handoff_created"])
        create(client, auth("engineer"))
        work_until(settled(client, auth, webhook["id"]))
    requests = receiver.hook_requests()
    assert len(requests) == 3
    assert len({request.headers["webhook-id"] for request in requests}) == 1
    assert len({request.body for request in requests}) == 1
    gaps = [later.at - earlier.at for earlier, later in zip(requests, requests[1:], strict=False)]
    assert all(gap >= INTERVALS[0] for gap in gaps), gaps  # the back-off was kept
    [delivery] = deliveries(client, auth, webhook["id"])
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
    assert (delivery["last_status_code"], delivery["last_error"]) == (200, None)


def test_after_the_last_try_the_delivery_failed_and_redeliver_sends_it_again(
    client: TestClient, auth: TokenFactory, work_until: Work
) -> None:
    with Receiver([503, 503, 503, 200]) as receiver:
        webhook = subscribe(client, auth, receiver.url(), events=["handoff_created"])
        create(client, auth("engineer"))
        work_until(settled(client, auth, webhook["id"]))
        [failed] = deliveries(client, auth, webhook["id"])
        assert (failed["status"], failed["attempts"]) == ("failed", len(INTERVALS) + 1)
        assert (failed["last_status_code"], failed["last_error"]) == (503, "HTTP 503")
        path = f"{WEBHOOKS}/{webhook['id']}/deliveries/{failed['id']}/redeliver"
        again = client.post(path, headers=auth("admin"))
        assert again.status_code == 202, again.text
        assert again.json()["delivery"]["status"] == "pending"
        work_until(settled(client, auth, webhook["id"]))
    [delivered] = deliveries(client, auth, webhook["id"])
    assert (delivered["status"], delivered["attempts"]) == ("delivered", 4)
    assert {request.headers["webhook-id"] for request in receiver.hook_requests()} == {failed["id"]}


def test_410_disables_the_subscription(
    client: TestClient, auth: TokenFactory, work_until: Work
) -> None:
    with Receiver([410]) as receiver:
        webhook = subscribe(client, auth, receiver.url(), events=["handoff_created"])
        handoff = create(client, auth("engineer"))
        work_until(settled(client, auth, webhook["id"]))
        shown = client.get(f"{WEBHOOKS}/{webhook['id']}", headers=auth("admin")).json()
        assert shown["enabled"] is False and "410" in shown["disabled_reason"]
        [delivery] = deliveries(client, auth, webhook["id"])
        assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
            "failed",
            1,
            410,
        )
        create(client, auth("engineer"), "sess-2")  # no delivery for a disabled subscription
        assert len(deliveries(client, auth, webhook["id"])) == 1
        assert len(receiver.hook_requests()) == 1
        assert client.post(f"{HANDOFFS}/{handoff['id']}/cancel", headers=auth("engineer"))
        enabled = client.patch(
            f"{WEBHOOKS}/{webhook['id']}", json={"enabled": True}, headers=auth("admin")
        )
        assert enabled.json()["disabled_reason"] is None


# --- slack format ---------------------------------------------------------------------


def test_a_slack_delivery_is_a_valid_slack_message_linking_the_handoff(
    client: TestClient, auth: TokenFactory, work_until: Work
) -> None:
    with Receiver() as receiver:
        webhook = subscribe(client, auth, receiver.url(), format="slack")
        handoff = create(client, auth("engineer"), priority="urgent")
        claimed = client.post(
            f"{HANDOFFS}/{handoff['id']}/claim", headers=auth("senior", name="Dana <Senior>")
        )
        assert claimed.status_code == 200
        client.post(f"{WEBHOOKS}/{webhook['id']}/test", headers=auth("admin"))
        work_until(settled(client, auth, webhook["id"], count=3))
    messages = [json.loads(request.body) for request in receiver.hook_requests()]
    assert len(messages) == 3
    for message in messages:
        jsonschema.validate(message, SLACK_SCHEMA)
    created, claim = (m for m in messages if "blocks" in m and len(m["blocks"]) > 2)
    link = f"{PUBLIC_URL}/#/handoff/{handoff['id']}"
    text = json.dumps(created)
    assert link in created["text"] and link in text
    assert created["blocks"][0]["text"]["text"] == "New escalation"
    fields = [field["text"] for field in created["blocks"][1]["fields"]]
    assert fields[0] == "Priority: urgent"
    assert fields[1] == f"Domain: {handoff['snapshot']['problem_domain']}"
    assert fields[3] == "Level: 1 · all seniors"
    assert handoff["snapshot"]["problem_summary"] in created["blocks"][1]["text"]["text"]
    assert claim["blocks"][0]["text"]["text"] == "Claimed by Dana <Senior>"  # plain text
    assert "Dana &lt;Senior&gt;" not in json.dumps(claim["blocks"][0])


# --- slim events (issue 18, item 7) -----------------------------------------------------

EVENT_BYTES_MAX = 8 * 1024


def test_a_handoff_with_a_200_kb_transcript_sends_bodies_under_8_kb_in_both_formats(
    client: TestClient, auth: TokenFactory, work_until: Work
) -> None:
    """Created (1 MB: a 200 KB transcript, 200 long tried steps, 10,000 characters
    of notes) and claimed by a senior with a 256-character name: each delivery
    body is under 8 KB; the Slack message still shows the whole summary, and the
    rest is one GET away."""
    with Receiver() as standard_receiver, Receiver() as slack_receiver:
        standard = subscribe(client, auth, standard_receiver.url())
        slack = subscribe(client, auth, slack_receiver.url(), format="slack")
        response = client.post(HANDOFFS, json=long_handoff_body(), headers=auth("engineer"))
        assert response.status_code == 201, response.text
        handoff = response.json()
        claimer = auth("senior", name="D" * 256)
        assert client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=claimer).status_code == 200
        work_until(settled(client, auth, standard["id"], count=2))
        work_until(settled(client, auth, slack["id"], count=2))
    bodies = [r.body for r in standard_receiver.hook_requests() + slack_receiver.hook_requests()]
    assert len(bodies) == 4
    assert max(len(body) for body in bodies) < EVENT_BYTES_MAX, [len(body) for body in bodies]
    events = [json.loads(r.body) for r in standard_receiver.hook_requests()]
    assert [event["type"] for event in events] == ["handoff_created", "handoff_claimed"]
    summary = handoff["snapshot"]["problem_summary"]
    for event in events:
        snapshot = event["handoff"]["snapshot"]
        assert (snapshot["transcript_message_count"], snapshot["tried_step_count"]) == (500, 200)
        assert snapshot["problem_summary"] == summary
        assert "transcript" not in snapshot and "engineer_notes" not in event["handoff"]
    for message in (json.loads(r.body) for r in slack_receiver.hook_requests()):
        jsonschema.validate(message, SLACK_SCHEMA)
        assert message["blocks"][1]["text"]["text"] == summary
    full = client.get(f"{HANDOFFS}/{handoff['id']}", headers=auth("senior")).json()
    assert full["snapshot"]["transcript"] == LONG_TRANSCRIPT


def test_a_schema_check_refuses_a_broken_slack_message() -> None:
    """The schema is strict enough to fail: a header over 150 characters, a
    block type Slack does not have, a message without text."""
    good = {"text": "x", "blocks": [{"type": "divider"}]}
    jsonschema.validate(good, SLACK_SCHEMA)
    for bad in (
        {
            "text": "x",
            "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        },
        {"text": "x", "blocks": [{"type": "banner"}]},
        {"blocks": [{"type": "divider"}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SLACK_SCHEMA)


# --- receivers that misbehave ---------------------------------------------------------


def _one_try(client: TestClient, auth: TokenFactory, work_until: Work, step: Any) -> Any:
    """A receiver scripted with ``step`` then 200s: the first try's log entry,
    the seconds it took, and the receiver."""
    with Receiver([step, 200]) as receiver:
        webhook = subscribe(client, auth, receiver.url(), events=["handoff_created"])
        create(client, auth("engineer"))
        started = time.monotonic()
        work_until(lambda: deliveries(client, auth, webhook["id"])[0]["attempts"] >= 1)
        took = time.monotonic() - started
        [entry] = deliveries(client, auth, webhook["id"])
    return entry, took, receiver


def test_a_receiver_that_hangs_costs_one_bounded_try(
    client: TestClient, auth: TokenFactory, work_until: Work
) -> None:
    entry, took, _ = _one_try(client, auth, work_until, HANG)
    assert entry["last_error"] == f"timed out after {TIMEOUT_SECONDS:g} s"
    assert entry["status"] == "pending" and entry["last_status_code"] is None
    assert took < TIMEOUT_SECONDS + 3


def test_a_10_mb_answer_is_read_to_64_kib_only(
    client: TestClient, auth: TokenFactory, work_until: Work
) -> None:
    entry, took, receiver = _one_try(client, auth, work_until, BIG)
    assert (entry["status"], entry["last_status_code"]) == ("delivered", 200)
    assert receiver.big_bytes_sent < BIG_BYTES  # the sender hung up early
    assert took < TIMEOUT_SECONDS + 3
    assert MAX_RESPONSE_BYTES == 64 * 1024


def test_a_redirect_is_not_followed(
    client: TestClient, auth: TokenFactory, work_until: Work
) -> None:
    entry, _, receiver = _one_try(client, auth, work_until, REDIRECT)
    assert (entry["last_status_code"], entry["last_error"]) == (307, "HTTP 307")
    assert entry["status"] == "pending"  # a 3xx is retried like any other non-2xx
    assert [request.path for request in receiver.requests].count("/redirected") == 0


def test_a_name_resolving_to_loopback_is_refused_at_delivery(
    client: TestClient, auth: TokenFactory, settings: Settings, redis: Redis, engine: Engine
) -> None:
    """Subscribed while private networks were allowed; the worker does not allow
    them: ``localhost`` resolves to 127.0.0.1 at the try, so nothing is sent."""
    context = WorkerContext.build(
        settings.model_copy(update={"webhook_allow_private_networks": False})
    )
    set_context(context)
    try:
        with Receiver() as receiver:
            webhook = subscribe(client, auth, receiver.url(host="localhost"))
            create(client, auth("engineer"))
            queue = Queue(keys.NOTIFICATIONS_QUEUE, connection=redis)
            deadline = time.monotonic() + 10
            while deliveries(client, auth, webhook["id"])[0]["attempts"] == 0:
                assert time.monotonic() < deadline
                dispatch_due(engine=context.engine, redis=redis, settings=context.settings)
                PromptSimpleWorker([queue], connection=redis).work(burst=True)
            [entry] = deliveries(client, auth, webhook["id"])
        assert receiver.requests == []
        assert entry["last_status_code"] is None
        assert "loopback" in entry["last_error"]
    finally:
        set_context(None)
        context.close()


# --- the outbox side ------------------------------------------------------------------


def test_a_job_abandoned_by_a_killed_worker_is_found_by_the_reconciler(
    client: TestClient, auth: TokenFactory, context: WorkerContext, redis: Redis, work_until: Work
) -> None:
    """Its job says started, long ago, and its worker is gone: due again."""
    with Receiver() as receiver:
        webhook = subscribe(client, auth, receiver.url(), events=["handoff_created"])
        create(client, auth("engineer"))
        dispatch_due(engine=context.engine, redis=redis, settings=context.settings)
        job = enqueued_job(client, auth, redis, webhook["id"])
        Queue(keys.NOTIFICATIONS_QUEUE, connection=redis).remove(job)
        job.started_at = utcnow() - timedelta(minutes=1)
        job.set_status(JobStatus.STARTED)
        job.save()
        long_ago = utcnow() - timedelta(minutes=1)
        with session_scope(context.engine) as session:
            session.execute(update(WebhookDelivery).values(enqueued_at=long_ago))
            session.commit()
        fresh = reconcile_deliveries(engine=context.engine, redis=redis, settings=context.settings)
        assert fresh.requeued == 1
        work_until(settled(client, auth, webhook["id"]))
    assert len(receiver.hook_requests()) == 1
    assert deliveries(client, auth, webhook["id"])[0]["attempts"] == 1


def test_a_lost_job_is_found_by_the_reconciler(
    client: TestClient, auth: TokenFactory, context: WorkerContext, redis: Redis, work_until: Work
) -> None:
    with Receiver() as receiver:
        webhook = subscribe(client, auth, receiver.url(), events=["handoff_created"])
        create(client, auth("engineer"))
        dispatch_due(engine=context.engine, redis=redis, settings=context.settings)
        enqueued_job(client, auth, redis, webhook["id"])
        redis.flushdb()  # Redis restarted empty: the job is gone, the row says enqueued
        long_ago = utcnow() - timedelta(minutes=1)
        with session_scope(context.engine) as session:
            session.execute(update(WebhookDelivery).values(enqueued_at=long_ago))
            session.commit()
        report = reconcile_deliveries(engine=context.engine, redis=redis, settings=context.settings)
        assert (report.checked, report.requeued) == (1, 1)
        work_until(settled(client, auth, webhook["id"]))
    assert len(receiver.hook_requests()) == 1


def test_deliveries_wait_out_a_redis_outage(
    context: WorkerContext, redis: Redis, engine: Engine
) -> None:
    """Enqueueing fails while Redis is unreachable: the rows are released, not
    lost, and go out once Redis answers. (No API here: its own dispatcher would
    enqueue the delivery first.)"""
    with Receiver() as receiver:
        with session_scope(engine) as session:
            subscriptions.create_webhook(
                actor=SYSTEM,
                session=session,
                org_id="acme",
                body=WebhookCreate(url=receiver.url(), events=["handoff_created"]),
                allow_private=True,
                max_webhooks=20,
            )
            principal = Principal(user_id="u-1", name="Jo", role=Role.engineer, org_id="acme")
            create_handoff(
                session=session,
                principal=principal,
                body=HandoffCreate.model_validate(handoff_body()),
                claim_sla_seconds=300,
            )
        dead = make_redis(f"redis://127.0.0.1:{free_port()}/0")
        with pytest.raises(RedisError):
            dispatch_due(engine=engine, redis=dead, settings=context.settings)
        dead.close()
        assert _enqueued(engine) == 0
        assert dispatch_due(engine=engine, redis=redis, settings=context.settings) == 1
        queue = Queue(keys.NOTIFICATIONS_QUEUE, connection=redis)
        PromptSimpleWorker([queue], connection=redis).work(burst=True)
    assert len(receiver.hook_requests()) == 1


def _enqueued(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT count(*) FROM webhook_deliveries WHERE enqueued_at IS NOT NULL")
        ).scalar_one()
