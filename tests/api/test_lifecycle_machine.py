"""The handoff lifecycle as a hypothesis state machine, against the real app,
database (SQLite and PostgreSQL) and Redis, with the real RQ job run by an
in-process ``SimpleWorker`` (the service's).

Random steps — create (orgs, sessions from a small pool, priorities,
idempotency keys), claim, release, resolve, cancel, retry the assessment, get,
list, history, run the worker (assessments succeeding or failing), Redis
restarting empty, the reconciler — are taken by actors of every role in three
orgs, often of the wrong org or role. A model says what SPEC allows; every
answer must be the status and ``error`` code SPEC gives for that actor and
state, and after every step the org's queue must equal the model (one claimer,
at most one open handoff per session, queue order, nothing of another org).
The touched handoff's history must equal the transitions made; at teardown
every history is checked, and each org's event ids must increase in the order
the transitions were made.

Bounded for CI: 20 examples of up to 35 steps per database, 25-45 s each on
the shared 2-core CI machine. Hunt for bugs with more (and a longer timeout):
``ESCALATIONS_MACHINE_EXAMPLES=300 pytest tests/api/test_lifecycle_machine.py -o timeout=3600``
(``ESCALATIONS_MACHINE_STEPS`` sets the steps). ``-rP`` prints how often each
request got each answer.
"""

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from redis import Redis
from rq import Queue
from sqlalchemy import Engine

from services.api.app import create_app
from services.worker.assessors.base import AssessmentError, AssessmentRequest, AssessmentResult
from services.worker.assessors.heuristic import HeuristicAssessor
from services.worker.context import WorkerContext, set_context
from services.worker.rq_classes import PromptSimpleWorker
from shared.assessments.reconciler import reconcile_assessments
from shared.auth.tokens import issue_token
from shared.core import keys
from shared.core.db import make_engine
from shared.core.models import Role
from shared.core.redis_client import make_redis
from shared.core.settings import Settings
from shared.handoffs.models import PRIORITY_RANK, Priority
from tests.conftest import REDIS_URL, TEST_SECRET, empty_tables, handoff_body

# A fuzzer: minutes of examples, so not in the fast loop (scripts/test --fast).
pytestmark = pytest.mark.slow

HANDOFFS = "/api/v1/handoffs"
MAX_EXAMPLES = int(os.environ.get("ESCALATIONS_MACHINE_EXAMPLES", "20"))
STEPS = int(os.environ.get("ESCALATIONS_MACHINE_STEPS", "35"))

ORGS = ("acme", "globex", "initech")
SESSIONS = ("sess-a", "sess-b", "sess-c")
IDEMPOTENCY_KEYS = (None, None, None, "key-1", "key-2")
PRIORITIES = tuple(priority.value for priority in Priority)
#: Who acts, by slot; "shared" is one user id with a different role in each org.
SLOTS = ("engineer-1", "engineer-2", "senior-1", "senior-2", "admin-1", "shared")
SHARED_ROLES = {"acme": "senior", "globex": "admin", "initech": "engineer"}
#: For steps on a handoff, also whoever holds its claim or created it, so legal
#: transitions are common (the same user id in another org when ``where`` is "other").
HANDOFF_SLOTS = (
    "engineer-1",
    "senior-1",
    "senior-2",
    "admin-1",
    "shared",
    "the-claimer",
    "the-claimer",
    "the-claimer",
    "the-creator",
)
#: Mostly the handoff's own org, sometimes another one.
WHERE = ("own", "own", "own", "own", "own", "other")
NOTES = {"resolution_notes": "Raised the memory limit; no restarts since."}
#: How often each operation got each answer, printed after the test (see it with ``-rP``).
OUTCOMES: Counter[str] = Counter()
#: Steps on one handoff, the lifecycle's transitions weighted up.
ACTIONS = (
    "claim",
    "claim",
    "release",
    "release",
    "resolve",
    "resolve",
    "cancel",
    "retry_assessment",
    "retry_assessment",
    "get_and_history",
    "list_by_status",
    "unknown_ids",
)
SUITS: dict[str, Any] = {
    "claim": lambda h: h.status == "pending",
    "cancel": lambda h: h.status == "pending",
    "release": lambda h: h.status == "claimed",
    "resolve": lambda h: h.status == "claimed",
    "retry_assessment": lambda h: h.assessment != "ready" and not h.job_live,
    "get_and_history": lambda h: True,
    "list_by_status": lambda h: True,
    "unknown_ids": lambda h: True,
}
BACKGROUND = ("worker", "failing-worker", "redis-restarts-empty", "reconciler")
GHOST_ID = "00000000-0000-4000-8000-000000000000"
OPEN = ("pending", "claimed")


@dataclass(frozen=True)
class Actor:
    org: str
    sub: str
    name: str
    role: str

    @property
    def is_senior(self) -> bool:
        return self.role in ("senior", "admin")

    @property
    def headers(self) -> dict[str, str]:
        return _headers(self)


@cache
def _headers(actor: Actor) -> dict[str, str]:
    token = issue_token(
        secret=TEST_SECRET,
        sub=actor.sub,
        name=actor.name,
        role=Role(actor.role),
        org=actor.org,
        ttl=timedelta(hours=2),
    )
    return {"Authorization": f"Bearer {token}"}


def actor(org: str, slot: str) -> Actor:
    if slot == "shared":
        return Actor(org, "u-shared", f"Sam Shared ({org})", SHARED_ROLES[org])
    role = slot.split("-")[0]
    return Actor(org, f"{org}-{slot}", f"{slot.title()} of {org}", role)


def other_org(org: str) -> str:
    return ORGS[(ORGS.index(org) + 1) % len(ORGS)]


@dataclass
class Expected:
    """What SPEC says a handoff is now, and the events it has written."""

    id: str
    org: str
    session_id: str
    priority: str
    creator: Actor
    created: dict[str, Any]
    status: str = "pending"
    claimer: Actor | None = None
    claimed_at: str | None = None
    resolution_notes: str | None = None
    assessment: str = "pending"
    job_live: bool = True
    #: (type, status, claimed_by_id, assessment_status, actor_id) per event.
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def record(self, event_type: str, by: Actor | None) -> tuple[Any, ...]:
        claimed_by = self.claimer.sub if self.claimer else None
        event = (event_type, self.status, claimed_by, self.assessment, by.sub if by else None)
        self.events.append(event)
        return event


class SwitchableAssessor:
    """The heuristic assessor, or a failure when ``fail`` is set."""

    name = "heuristic"

    def __init__(self) -> None:
        self.fail = False
        self._inner = HeuristicAssessor()

    def assess(self, request: AssessmentRequest) -> AssessmentResult:
        if self.fail:
            raise AssessmentError("the state machine asked for a failure")
        return self._inner.assess(request)


@dataclass
class Harness:
    """What every example shares: one app per test function, reset per example."""

    client: TestClient
    engine: Engine
    redis: Redis
    settings: Settings
    assessor: SwitchableAssessor

    def reset(self) -> None:
        empty_tables(self.engine)
        self.redis.flushdb()


def assert_answer(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    OUTCOMES[f"{_operation(response.request)} -> {status} {code or ''}".rstrip()] += 1
    body = response.json()
    if status >= 400:
        assert body["error"] == code, body
        assert isinstance(body["detail"], str) and body["detail"]
    return body


def _operation(request: Any) -> str:
    """``POST claim``, ``GET history``…: what the outcome counts are keyed by."""
    action = "/".join(request.url.path.split("/")[5:]) or "(one)"
    if request.url.path.rstrip("/") == HANDOFFS:
        action = "(collection)"
    return f"{request.method} {action}"


class LifecycleMachine(RuleBasedStateMachine):
    harness: Harness  # set on a subclass per test function

    handoffs = Bundle("handoffs")

    def __init__(self) -> None:
        super().__init__()
        self.harness.reset()
        OUTCOMES["(examples)"] += 1
        self.client = self.harness.client
        self.model: dict[str, Expected] = {}
        #: Per org, (handoff id, event type) in the order the service committed them.
        self.org_log: dict[str, list[tuple[str, str]]] = {org: [] for org in ORGS}
        #: RQ's assessments queue, oldest first.
        self.queue: list[str] = []
        self.idempotency: dict[tuple[str, str, str], tuple[tuple[str, str], dict[str, Any]]] = {}
        self.failed = False
        #: Orgs a step acted in or on, whose queues the invariant re-reads (all at teardown).
        self.touched: set[str] = set(ORGS)

    # --- helpers ---------------------------------------------------------------

    @contextmanager
    def checking(self) -> Iterator[None]:
        """Marks the example failed when a step raises, so teardown's own checks
        do not replace the first failure (which is what hypothesis shrinks)."""
        try:
            yield
        except BaseException:
            self.failed = True
            raise

    def who(self, handoff_id: str, slot: str, where: str) -> tuple[Expected, Actor]:
        expected = self.model[handoff_id]
        org = expected.org if where == "own" else other_org(expected.org)
        self.touched |= {expected.org, org}
        person = {"the-claimer": expected.claimer, "the-creator": expected.creator}.get(slot)
        if person is not None:
            return expected, Actor(org, person.sub, person.name, person.role)
        return expected, actor(org, "senior-1" if slot.startswith("the-") else slot)

    def post(self, handoff_id: str, action: str, by: Actor, body: Any = None) -> Any:
        return self.client.post(f"{HANDOFFS}/{handoff_id}/{action}", json=body, headers=by.headers)

    def changed(self, expected: Expected, event_type: str, by: Actor | None) -> None:
        expected.record(event_type, by)
        self.org_log[expected.org].append((expected.id, event_type))

    def enqueue(self, expected: Expected) -> None:
        expected.job_live = True
        self.queue.append(expected.id)

    def assert_matches(self, item: dict[str, Any], expected: Expected) -> None:
        claimer = expected.claimer
        assert item["id"] == expected.id and item["org_id"] == expected.org
        assert (item["status"], item["assessment_status"]) == (
            expected.status,
            expected.assessment,
        ), item
        assert (item["claimed_by_id"], item["claimed_by_name"], item["claimed_at"]) == (
            (claimer.sub, claimer.name, expected.claimed_at) if claimer else (None, None, None)
        ), item
        assert item["resolution_notes"] == expected.resolution_notes
        assert (item["resolved_at"] is not None) == (expected.status == "resolved")
        assert (item["ai_assessment_data"] is not None) == (expected.assessment == "ready")
        for unchanged in ("session_id", "priority", "created_by_id", "created_by_name"):
            assert item[unchanged] == expected.created[unchanged]
        for unchanged in ("created_at", "engineer_notes", "snapshot"):
            assert item[unchanged] == expected.created[unchanged]
        # No org here sets a policy: the default level never moves (and nobody is assigned).
        assert (item["escalation_level"], item["escalation_loop"]) == (0, 0), item
        assert (item["next_escalation_at"], item["assigned_to_id"]) == (None, None), item
        assert item["escalation_target"]["target"] == "all_seniors", item

    def assert_history(self, expected: Expected) -> list[dict[str, Any]]:
        by = actor(expected.org, "engineer-1")
        response = self.client.get(f"{HANDOFFS}/{expected.id}/history", headers=by.headers)
        items = assert_answer(response, 200)["items"]
        seen = [
            (
                event["type"],
                event["handoff"]["status"],
                event["handoff"]["claimed_by_id"],
                event["handoff"]["assessment_status"],
                event["actor_id"],
            )
            for event in items
        ]
        assert seen == expected.events
        assert all(
            (event["org_id"], event["handoff_id"]) == (expected.org, expected.id) for event in items
        )
        ids = [event["id"] for event in items]
        assert ids == sorted(set(ids)), ids
        return items

    def expected_queue(self, org: str, status: str | None = None) -> list[str]:
        def position(expected: Expected) -> tuple[Any, ...]:
            created = expected.created
            return (PRIORITY_RANK[Priority(expected.priority)], created["created_at"], expected.id)

        chosen = [
            expected
            for expected in self.model.values()
            if expected.org == org and status in (None, expected.status)
        ]
        return [expected.id for expected in sorted(chosen, key=position)]

    # --- create ----------------------------------------------------------------

    @initialize(
        target=handoffs,
        seeds=st.lists(
            st.tuples(
                st.sampled_from(ORGS),
                st.sampled_from(SLOTS),
                st.sampled_from(SESSIONS),
                st.sampled_from(PRIORITIES),
            ),
            min_size=1,
            max_size=6,
        ),
    )
    def seed(self, seeds: list[tuple[str, str, str, str]]) -> Any:
        """A few creates first, so most steps have handoffs to act on."""
        created = [self.create(*seed, key=None) for seed in seeds]
        return multiple(*[handoff_id for handoff_id in created if isinstance(handoff_id, str)])

    @rule(
        target=handoffs,
        org=st.sampled_from(ORGS),
        slot=st.sampled_from(SLOTS),
        session_id=st.sampled_from(SESSIONS),
        priority=st.sampled_from(PRIORITIES),
        key=st.sampled_from(IDEMPOTENCY_KEYS),
    )
    def create(self, org: str, slot: str, session_id: str, priority: str, key: str | None) -> Any:
        with self.checking():
            by = actor(org, slot)
            self.touched.add(org)
            headers = dict(by.headers)
            if key is not None:
                headers["Idempotency-Key"] = key
            body = handoff_body(session_id, priority=priority)
            response = self.client.post(HANDOFFS, json=body, headers=headers)

            if key is not None and (org, by.sub, key) in self.idempotency:
                first_request, first_answer = self.idempotency[(org, by.sub, key)]
                if first_request != (session_id, priority):
                    assert_answer(response, 422, "idempotency_key_reused")
                else:
                    assert assert_answer(response, 201) == first_answer
                    assert response.headers["Idempotent-Replayed"] == "true"
                return multiple()
            open_ones = [
                expected
                for expected in self.model.values()
                if (expected.org, expected.session_id, expected.status in OPEN)
                == (org, session_id, True)
            ]
            if open_ones:
                error = assert_answer(response, 409, "session_already_escalated")
                assert error["handoff_id"] == open_ones[0].id
                return multiple()

            created = assert_answer(response, 201)
            assert (created["org_id"], created["session_id"], created["priority"]) == (
                org,
                session_id,
                priority,
            )
            assert (created["created_by_id"], created["created_by_name"]) == (by.sub, by.name)
            expected = Expected(
                id=created["id"],
                org=org,
                session_id=session_id,
                priority=priority,
                creator=by,
                created=created,
            )
            assert expected.id not in self.model
            self.assert_matches(created, expected)
            self.model[expected.id] = expected
            self.changed(expected, "handoff_created", by)
            self.enqueue(expected)
            if key is not None:
                self.idempotency[(org, by.sub, key)] = ((session_id, priority), created)
            return expected.id

    # --- steps on one handoff ----------------------------------------------------

    @rule(
        handoff=handoffs,
        action=st.sampled_from(ACTIONS),
        slot=st.sampled_from(HANDOFF_SLOTS),
        where=st.sampled_from(WHERE),
        focus=st.none() | st.integers(0, 7),
    )
    def act(self, handoff: str, action: str, slot: str, where: str, focus: int | None) -> None:
        """One request on a handoff. With ``focus``, on the handoff that many places
        into those the action suits (pending ones for a claim, claimed ones for a
        release…), when there is one, so legal steps are common.

        (One rule for every action, not one rule each: hypothesis' swarm testing
        disables whole rules per example, and the interesting sequences need
        several kinds of step together.)"""
        with self.checking():
            if focus is not None:
                suited = [h.id for h in self.model.values() if SUITS[action](h)] or [handoff]
                handoff = suited[focus % len(suited)]
            expected, by = self.who(handoff, slot, where)
            getattr(self, action)(expected, by)

    def claim(self, expected: Expected, by: Actor) -> None:
        response = self.post(expected.id, "claim", by)
        if not by.is_senior:
            assert_answer(response, 403, "insufficient_role")
        elif by.org != expected.org:
            assert_answer(response, 404, "handoff_not_found")
        elif expected.status == "claimed" and expected.claimer == by:
            self.assert_matches(assert_answer(response, 200), expected)
        elif expected.status == "claimed":
            assert expected.claimer is not None
            error = assert_answer(response, 409, "handoff_already_claimed")
            assert error == {
                "error": "handoff_already_claimed",
                "detail": f"Already claimed by {expected.claimer.name}.",
                "claimed_by_id": expected.claimer.sub,
                "claimed_by_name": expected.claimer.name,
                "claimed_at": expected.claimed_at,
            }
        elif expected.status != "pending":
            assert assert_answer(response, 409, "invalid_state")["status"] == expected.status
        else:
            answer = assert_answer(response, 200)
            expected.status, expected.claimer = "claimed", by
            expected.claimed_at = answer["claimed_at"]
            self.assert_matches(answer, expected)
            self.changed(expected, "handoff_claimed", by)
            self.assert_history(expected)

    def release(self, expected: Expected, by: Actor) -> None:
        response = self.post(expected.id, "release", by)
        if not by.is_senior:
            assert_answer(response, 403, "insufficient_role")
        elif by.org != expected.org:
            assert_answer(response, 404, "handoff_not_found")
        elif expected.status != "claimed":
            assert_answer(response, 409, "invalid_state")
        elif expected.claimer != by and by.role != "admin":
            assert_answer(response, 403, "not_claim_owner")
        else:
            released = assert_answer(response, 200)
            expected.status, expected.claimer, expected.claimed_at = "pending", None, None
            self.assert_matches(released, expected)
            self.changed(expected, "handoff_released", by)
            self.assert_history(expected)

    def resolve(self, expected: Expected, by: Actor) -> None:
        response = self.post(expected.id, "resolve", by, NOTES)
        if not by.is_senior:
            assert_answer(response, 403, "insufficient_role")
        elif by.org != expected.org:
            assert_answer(response, 404, "handoff_not_found")
        elif expected.status != "claimed":
            assert_answer(response, 409, "invalid_state")
        elif expected.claimer != by:
            assert_answer(response, 403, "not_claim_owner")
        else:
            resolved = assert_answer(response, 200)
            expected.status = "resolved"
            expected.resolution_notes = NOTES["resolution_notes"]
            self.assert_matches(resolved, expected)
            self.changed(expected, "handoff_resolved", by)
            self.assert_history(expected)

    def cancel(self, expected: Expected, by: Actor) -> None:
        response = self.post(expected.id, "cancel", by)
        if by.org != expected.org:
            assert_answer(response, 404, "handoff_not_found")
        elif expected.creator != by and by.role != "admin":
            assert_answer(response, 403, "not_creator")
        elif expected.status != "pending":
            assert_answer(response, 409, "invalid_state")
        else:
            cancelled = assert_answer(response, 200)
            expected.status = "cancelled"
            self.assert_matches(cancelled, expected)
            self.changed(expected, "handoff_cancelled", by)
            self.assert_history(expected)

    # --- assessments -------------------------------------------------------------

    def retry_assessment(self, expected: Expected, by: Actor) -> None:
        response = self.post(expected.id, "assessment/retry", by)
        if not by.is_senior:
            assert_answer(response, 403, "insufficient_role")
        elif by.org != expected.org:
            assert_answer(response, 404, "handoff_not_found")
        elif expected.assessment == "ready":
            assert_answer(response, 409, "assessment_ready")
        elif expected.job_live:
            assert_answer(response, 409, "assessment_running")
        else:
            expected.assessment = "pending"
            self.assert_matches(assert_answer(response, 202), expected)
            self.enqueue(expected)

    @rule(what=st.sampled_from(BACKGROUND))
    def background(self, what: str) -> None:
        """Something outside the API happens (one rule, for the reason ``act`` is one)."""
        with self.checking():
            if what == "reconciler":
                self.reconcile()
            elif what == "redis-restarts-empty":
                self.redis_restarts_empty()
            else:
                self.run_worker(fail=what == "failing-worker")

    def run_worker(self, *, fail: bool) -> None:
        """A worker drains the queue; every assessment succeeds, or every one fails
        (no retries are configured, so a failure is the last one)."""
        self.harness.assessor.fail = fail
        self.touched = set(ORGS)
        queue = Queue(keys.ASSESSMENTS_QUEUE, connection=self.harness.redis)
        PromptSimpleWorker([queue], connection=self.harness.redis).work(burst=True)
        for handoff_id in self.queue:
            expected = self.model[handoff_id]
            expected.job_live = False
            if expected.assessment == "ready":
                continue  # the job finds it assessed already and skips it
            expected.assessment = "failed" if fail else "ready"
            self.changed(expected, f"handoff_assessment_{expected.assessment}", None)
        self.queue.clear()

    def redis_restarts_empty(self) -> None:
        """Every job (and lock) is lost; the database keeps every handoff."""
        self.harness.redis.flushdb()
        self.touched = set(ORGS)
        for expected in self.model.values():
            expected.job_live = False
        self.queue.clear()

    def reconcile(self) -> None:
        """The reconciler enqueues, by id, each pending assessment without a live job."""
        harness = self.harness
        self.touched = set(ORGS)
        reconcile_assessments(engine=harness.engine, redis=harness.redis, settings=harness.settings)
        for handoff_id in sorted(self.model):
            expected = self.model[handoff_id]
            if expected.assessment == "pending" and not expected.job_live:
                self.enqueue(expected)

    # --- reads -------------------------------------------------------------------

    def get_and_history(self, expected: Expected, by: Actor) -> None:
        handoff = expected.id
        response = self.client.get(f"{HANDOFFS}/{handoff}", headers=by.headers)
        history = self.client.get(f"{HANDOFFS}/{handoff}/history", headers=by.headers)
        if by.org != expected.org:
            assert_answer(response, 404, "handoff_not_found")
            assert_answer(history, 404, "handoff_not_found")
        else:
            self.assert_matches(assert_answer(response, 200), expected)
            assert_answer(history, 200)
            self.assert_history(expected)

    def list_by_status(self, expected: Expected, by: Actor) -> None:
        """The caller's org queue, filtered by the handoff's status (and unfiltered)."""
        for status in (expected.status, None):
            params = {"limit": 200} | ({"status": status} if status else {})
            response = self.client.get(HANDOFFS, params=params, headers=by.headers)
            page = assert_answer(response, 200)
            assert [item["id"] for item in page["items"]] == self.expected_queue(by.org, status)
            assert page["next_cursor"] is None

    def unknown_ids(self, expected: Expected, by: Actor) -> None:
        """Every action on ids that name no handoff (a role check comes first)."""
        for handoff_id in (GHOST_ID, "not-a-uuid"):
            for action in ("claim", "release", "resolve", "cancel", "assessment/retry"):
                response = self.post(handoff_id, action, by, NOTES if action == "resolve" else None)
                if action != "cancel" and not by.is_senior:
                    assert_answer(response, 403, "insufficient_role")
                else:
                    assert_answer(response, 404, "handoff_not_found")

    # --- invariants --------------------------------------------------------------

    @invariant()
    def each_org_sees_exactly_its_handoffs_as_modelled(self) -> None:
        with self.checking():
            OUTCOMES["(steps)"] += 1
            for org in sorted(self.touched):
                by = actor(org, "admin-1")
                response = self.client.get(HANDOFFS, params={"limit": 200}, headers=by.headers)
                items = assert_answer(response, 200)["items"]
                assert [item["id"] for item in items] == self.expected_queue(org)
                open_sessions = [item["session_id"] for item in items if item["status"] in OPEN]
                assert len(open_sessions) == len(set(open_sessions)), open_sessions
                for item in items:
                    self.assert_matches(item, self.model[item["id"]])
                    assert (item["claimed_by_id"] is not None) == (
                        item["status"] in ("claimed", "resolved")
                    )
            self.touched.clear()

    def teardown(self) -> None:
        if self.failed:
            return
        self.touched = set(ORGS)
        self.each_org_sees_exactly_its_handoffs_as_modelled()
        for org in ORGS:
            committed: list[tuple[int, str, str]] = []
            for expected in self.model.values():
                if expected.org != org:
                    continue
                committed += [
                    (event["id"], expected.id, event["type"])
                    for event in self.assert_history(expected)
                ]
                outsider = actor(other_org(org), "admin-1")
                response = self.client.get(
                    f"{HANDOFFS}/{expected.id}/history", headers=outsider.headers
                )
                assert_answer(response, 404, "handoff_not_found")
            ids = [event_id for event_id, _, _ in committed]
            assert len(ids) == len(set(ids)), "event ids repeat within an org"
            in_id_order = [(handoff_id, type) for _, handoff_id, type in sorted(committed)]
            assert in_id_order == self.org_log[org], "event ids do not follow commit order"


# --- the tests -------------------------------------------------------------------


def _settings(database_url: str) -> Settings:
    """No retries (a failed try is the last), and no rate limits: the machine
    tests the lifecycle, not the limiter."""
    options: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "jwt_secret": TEST_SECRET,
        "assessment_retries": 0,
    }
    if "rate_limits_enabled" in Settings.model_fields:
        options["rate_limits_enabled"] = False
    return Settings(**options)


@pytest.fixture
def harness(database_url: str) -> Iterator[Harness]:
    settings = _settings(database_url)
    assessor = SwitchableAssessor()
    engine = make_engine(database_url)
    redis = make_redis(REDIS_URL)
    context = WorkerContext(settings=settings, engine=engine, redis=redis, assessor=assessor)
    set_context(context)
    try:
        with TestClient(create_app(settings)) as client:
            yield Harness(client, engine, redis, settings, assessor)
    finally:
        set_context(None)
        redis.flushdb()
        context.close()


def test_the_lifecycle_keeps_specs_invariants(harness: Harness) -> None:
    machine = type("Machine", (LifecycleMachine,), {"harness": harness})
    run_state_machine_as_test(
        machine,
        settings=hypothesis_settings(
            max_examples=MAX_EXAMPLES, stateful_step_count=STEPS, deadline=None
        ),
    )
    for outcome, count in sorted(OUTCOMES.items()):
        print(f"{count:6d}  {outcome}")
    OUTCOMES.clear()
