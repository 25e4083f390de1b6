"""The dispatcher's fairness and the circuit breaker, on SQLite and PostgreSQL:
``claim_due`` enqueues no more than the per-org and per-receiver caps allow in
flight, skips a paused webhook and probes a half-open one a try at a time;
``finish_try`` opens the breaker after failing tries for a while, doubles the
pause when the probe fails and closes it on a 2xx. Time is passed in (``now``),
so nothing here waits."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import Engine

from shared.audit import SYSTEM
from shared.core import keys
from shared.core.db import session_scope
from shared.core.settings import Settings
from shared.core.timeutil import as_utc, utcnow
from shared.webhooks import deliveries, dispatch, subscriptions, tries
from shared.webhooks.circuit import Breaker, receiver_of
from shared.webhooks.dispatch import dispatch_due
from shared.webhooks.models import Webhook, WebhookCreate, WebhookDelivery
from tests.conftest import REDIS_URL, TEST_SECRET

CAPS = tries.InFlightCaps(per_org=3, per_host=5)
BREAKER = Breaker(failures=3, min_seconds=10, pause_seconds=30, max_pause_seconds=100)
INTERVALS = [1.0] * 20


def webhook(engine: Engine, org: str, url: str) -> Webhook:
    with session_scope(engine) as session:
        created = subscriptions.create_webhook(
            actor=SYSTEM,
            session=session,
            org_id=org,
            body=WebhookCreate(url=url),
            allow_private=True,
            max_webhooks=100,
        )
        row = session.get(Webhook, created.id)
        assert row is not None
        session.expunge(row)
        return row


def due(engine: Engine, hook: Webhook, count: int) -> list[str]:
    """``count`` test deliveries of ``hook``, due now, in order."""
    ids = []
    for _ in range(count):
        with session_scope(engine) as session:
            ids.append(deliveries.create_test_delivery(session, webhook=hook).id)
    return ids


def claim(engine: Engine, now: datetime | None = None) -> list[WebhookDelivery]:
    with session_scope(engine) as session:
        claimed = tries.claim_due(session, now=now or utcnow(), limit=200, caps=CAPS)
        session.expunge_all()
        return claimed


def finish(
    engine: Engine, delivery: WebhookDelivery, status_code: int | None, now: datetime
) -> str:
    with session_scope(engine) as session:
        return tries.finish_try(
            session,
            delivery=delivery,
            status_code=status_code,
            error=None if status_code == 200 else "HTTP 500",
            intervals=INTERVALS,
            breaker=BREAKER,
            now=now,
        )


def load(engine: Engine, model: type, row_id: str) -> object:
    with session_scope(engine) as session:
        row = session.get(model, row_id)
        session.expunge(row)
        return row


# --- fairness -------------------------------------------------------------------------


def test_an_org_with_a_backlog_gets_its_cap_and_the_others_theirs(engine: Engine) -> None:
    noisy = webhook(engine, "org-b", "http://b.example:8001/hook")
    quiet = webhook(engine, "org-a", "http://a.example:8002/hook")
    backlog = due(engine, noisy, 20)
    [late] = due(engine, quiet, 1)  # due after all twenty of org B's

    first = claim(engine)
    assert [d.id for d in first if d.org_id == "org-b"] == backlog[:3]  # oldest first
    assert [d.id for d in first if d.org_id == "org-a"] == [late]
    assert claim(engine) == []  # org B's three are still in flight

    finish(engine, first[0], 200, utcnow())
    assert [d.id for d in claim(engine)] == [backlog[3]]  # one left: one more


def test_a_receiver_shared_by_orgs_is_capped_across_them(engine: Engine) -> None:
    hooks = [webhook(engine, f"org-{n}", "http://shared.example/hook") for n in range(3)]
    for hook in hooks:
        due(engine, hook, 3)
    claimed = claim(engine)
    assert len(claimed) == CAPS.per_host  # 9 due, 3 per org allowed, 5 per receiver
    assert claim(engine) == []


def test_an_orgs_backlog_at_a_shared_receiver_leaves_room_for_another_org(
    engine: Engine,
) -> None:
    """Org B's rows beyond its own cap do not count against the receiver's."""
    noisy = webhook(engine, "org-b", "https://hooks.example/b")
    quiet = webhook(engine, "org-c", "https://hooks.example/c")
    due(engine, noisy, 20)
    [late] = due(engine, quiet, 1)
    claimed = claim(engine)
    assert sorted(d.org_id for d in claimed) == ["org-b"] * CAPS.per_org + ["org-c"]
    assert late in {d.id for d in claimed}


def test_a_half_open_webhooks_backlog_leaves_room_for_its_orgs_other_webhooks(
    engine: Engine,
) -> None:
    probing = webhook(engine, "org-b", "http://failing.example/hook")
    healthy = webhook(engine, "org-b", "http://fine.example/hook")
    due(engine, probing, 10)
    [other] = due(engine, healthy, 1)
    with session_scope(engine) as session:  # paused, and the pause is over: half-open
        row = session.get(Webhook, probing.id)
        assert row is not None
        row.paused_until, row.consecutive_failures = utcnow() - timedelta(seconds=1), 5
        session.commit()
    claimed = claim(engine)
    assert [d.webhook_id for d in claimed].count(probing.id) == 1
    assert other in {d.id for d in claimed}


def test_an_orgs_only_try_of_a_batch_jumps_the_queue(engine: Engine, redis: Redis) -> None:
    """Org B's cap refilled at once must not queue ahead of org A's one try."""
    noisy = webhook(engine, "org-b", "http://b.example/hook")
    quiet = webhook(engine, "org-a", "http://a.example/hook")
    due(engine, noisy, 3)
    [late] = due(engine, quiet, 1)
    settings = Settings(
        database_url="sqlite://", redis_url=REDIS_URL, jwt_secret=TEST_SECRET,
        webhook_max_in_flight_per_org=CAPS.per_org,
    )  # fmt: skip
    assert dispatch_due(engine=engine, redis=redis, settings=settings) == 4
    queue = Queue(keys.NOTIFICATIONS_QUEUE, connection=redis)
    assert queue.job_ids[0] == keys.delivery_job_id(late, 1)
    assert len(queue.job_ids) == 4

    # Org A's next try, with its first still queued, goes to the back: its order holds.
    [later] = due(engine, quiet, 1)
    assert dispatch_due(engine=engine, redis=redis, settings=settings) == 1
    assert queue.job_ids[0] == keys.delivery_job_id(late, 1)
    assert queue.job_ids[-1] == keys.delivery_job_id(later, 1)


def test_an_orgs_only_try_of_a_batch_is_enqueued_first(
    engine: Engine, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only first in the queue: first to be enqueued, so it does not wait for the
    round trips of the burst's own enqueues either."""
    noisy = webhook(engine, "org-b", "http://b.example/hook")
    quiet = webhook(engine, "org-a", "http://a.example/hook")
    due(engine, noisy, 3)
    [late] = due(engine, quiet, 1)
    enqueued: list[str] = []
    real = dispatch.enqueue_delivery

    def recording(redis: Redis, delivery: WebhookDelivery, **kwargs: Any) -> Any:
        enqueued.append(delivery.id)
        return real(redis, delivery, **kwargs)

    monkeypatch.setattr(dispatch, "enqueue_delivery", recording)
    settings = Settings(
        database_url="sqlite://", redis_url=REDIS_URL, jwt_secret=TEST_SECRET,
        webhook_max_in_flight_per_org=CAPS.per_org,
    )  # fmt: skip
    assert dispatch.dispatch_due(engine=engine, redis=redis, settings=settings) == 4
    assert enqueued[0] == late and len(enqueued) == 4


def test_the_receiver_is_host_and_port() -> None:
    assert receiver_of("https://Hooks.Slack.com/services/x") == "hooks.slack.com:443"
    assert receiver_of("http://127.0.0.1:8123/a") == "127.0.0.1:8123"
    assert receiver_of("http://[::1]/a") == "::1:80"
    assert receiver_of("http://host:99999/") == "host:80"  # an impossible port: no crash


# --- the circuit breaker --------------------------------------------------------------


def fail_tries(engine: Engine, hook: Webhook, count: int, start: datetime, step: float) -> None:
    """``count`` failing tries of ``hook``, one every ``step`` seconds from ``start``."""
    for n in range(count):
        now = start + timedelta(seconds=n * step)
        [delivery] = [d for d in claim(engine, now) if d.webhook_id == hook.id]
        assert finish(engine, delivery, 500, now) == "retry"


def test_the_breaker_opens_after_failing_for_a_while_and_pauses_the_webhook(
    engine: Engine,
) -> None:
    hook = webhook(engine, "org-b", "http://failing.example/hook")
    other = webhook(engine, "org-b", "http://fine.example/hook")
    [delivery_id] = due(engine, hook, 1)
    start = utcnow()

    fail_tries(engine, hook, 3, start, step=1.0)  # three in a row, but over 2 s only
    assert load(engine, Webhook, hook.id).paused_until is None  # type: ignore[attr-defined]

    fail_tries(engine, hook, 8, start + timedelta(seconds=3), step=1.0)  # 11 over 10 s
    row = load(engine, Webhook, hook.id)
    assert row.consecutive_failures == 11  # type: ignore[attr-defined]
    opened = start + timedelta(seconds=10)
    assert as_utc(row.paused_until) == opened + timedelta(seconds=30)  # type: ignore[attr-defined]
    entry = load(engine, WebhookDelivery, delivery_id)
    assert "receiver paused until" in entry.last_error  # type: ignore[attr-defined]

    # Paused: its due delivery is not claimed; another webhook of the org still is.
    [other_delivery] = due(engine, other, 1)
    now = opened + timedelta(seconds=29)
    assert [d.id for d in claim(engine, now)] == [other_delivery]


def test_half_open_probes_one_try_a_failure_doubles_the_pause_a_2xx_closes(
    engine: Engine,
) -> None:
    hook = webhook(engine, "org-b", "http://failing.example/hook")
    due(engine, hook, 1)
    start = utcnow()
    fail_tries(engine, hook, 3, start, step=5.0)  # 3 failures over 10 s: opens for 30 s
    opened = start + timedelta(seconds=10)
    due(engine, hook, 2)  # three due now

    after_pause = opened + timedelta(seconds=31)
    [probe] = claim(engine, after_pause)  # half-open: one try at a time
    assert claim(engine, after_pause) == []
    finish(engine, probe, 500, after_pause)
    row = load(engine, Webhook, hook.id)
    assert row.pause_seconds == 60  # type: ignore[attr-defined]
    assert as_utc(row.paused_until) == after_pause + timedelta(seconds=60)  # type: ignore[attr-defined]

    later = after_pause + timedelta(seconds=61)
    [probe] = claim(engine, later)
    assert finish(engine, probe, 200, later) == "delivered"
    row = load(engine, Webhook, hook.id)
    assert (row.consecutive_failures, row.paused_until, row.pause_seconds) == (0, None, 0)  # type: ignore[attr-defined]
    assert len(claim(engine, later)) == 2  # closed: the rest go out together


def test_the_pause_never_exceeds_the_maximum(engine: Engine) -> None:
    hook = webhook(engine, "org-b", "http://failing.example/hook")
    due(engine, hook, 1)
    now = utcnow()
    fail_tries(engine, hook, 3, now, step=5.0)
    now += timedelta(seconds=10)
    for _ in range(4):  # 30 → 60 → 100 (the maximum) → 100
        now += timedelta(seconds=101)
        [probe] = claim(engine, now)
        finish(engine, probe, 500, now)
    assert load(engine, Webhook, hook.id).pause_seconds == 100  # type: ignore[attr-defined]
