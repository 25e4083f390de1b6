"""The redaction corpus through the real API (issue 22, done-when 1), on SQLite
and PostgreSQL: each secret of ``tests/redaction_corpus.py`` pasted into every
text field of a create, into the reassign note and into the resolution notes,
must be absent from every table's rows, every event (history, and the SSE replay
of a real replica), every webhook body (a real receiver, fed by the service's
RQ worker), every prompt the assessor sent to the (stubbed) LLM, and every log
(``testkit/log_leaks.py``); each ordinary sentence must come through unchanged.
Misses and false positives are counted, printed (``pytest -s``) and must be zero."""

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue
from sqlalchemy import Engine, MetaData, select

from services.worker.context import WorkerContext, set_context
from services.worker.rq_classes import PromptSimpleWorker
from shared.auth.tokens import issue_token
from shared.core import keys
from shared.core.models import Role
from shared.core.settings import Settings
from shared.webhooks.dispatch import dispatch_due
from testkit import log_leaks
from testkit.openai_stub import OpenAIStub
from testkit.procs import GENEROUS_LIMITS, api_env
from testkit.webhook_receiver import Receiver
from tests.api.helpers import HANDOFFS
from tests.conftest import REDIS_URL, TEST_SECRET, TokenFactory
from tests.e2e.conftest import StartReplica
from tests.e2e.sse import SSEClient
from tests.redaction_corpus import ORDINARY, SECRETS, Secret

# ~30 s on SQLite and ~50 s on PostgreSQL alone; room for a loaded CI machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

for _secret in SECRETS:
    for _value in _secret.values:
        log_leaks.register_secret(_value)

SENIOR_A, SENIOR_B = "u-ana", "u-ben"
#: The fields a create, a reassign and a resolve carry text in.
FIELDS = (
    "problem_summary",
    "tried_steps[0].description",
    "tried_steps[0].outcome",
    "transcript[0].content",
    "transcript[1].content",
    "engineer_notes",
    "reassign note",
    "resolution_notes",
)


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub(mode="good") as running:
        yield running


@pytest.fixture
def settings(database_url: str, stub: OpenAIStub) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        jwt_secret=TEST_SECRET,
        assessor="openai",
        llm_base_url=stub.base_url,
        llm_model="test-model",
        llm_timeout_seconds=5,
        webhook_allow_private_networks=True,
        webhook_timeout_seconds=2.0,
        **GENEROUS_LIMITS,
    )


@pytest.fixture
def context(settings: Settings, engine: Engine, redis: Redis) -> Iterator[WorkerContext]:
    context = WorkerContext.build(settings)
    set_context(context)
    yield context
    set_context(None)
    context.close()


def body_with(session_id: str, text: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "engineer_notes": text,
        "snapshot": {
            "problem_summary": text,
            "problem_domain": "databases",
            "status": "stuck",
            "step_count": 2,
            "confidence_tier": "low",
            "tried_steps": [{"description": text, "outcome": text}],
            "transcript": [
                {"role": "user", "content": text},
                {"role": "assistant", "content": text},
            ],
        },
    }


def stored_fields(handoff: dict[str, Any], note: str) -> dict[str, str]:
    snapshot = handoff["snapshot"]
    step, transcript = snapshot["tried_steps"][0], snapshot["transcript"]
    return dict(
        zip(
            FIELDS,
            (
                snapshot["problem_summary"],
                step["description"],
                step["outcome"],
                transcript[0]["content"],
                transcript[1]["content"],
                handoff["engineer_notes"],
                note,
                handoff["resolution_notes"],
            ),
            strict=True,
        )
    )


def senior(auth: TokenFactory, sub: str) -> dict[str, str]:
    return auth("senior", sub=sub, name=sub.title())


def walk_through(
    client: TestClient, auth: TokenFactory, session_id: str, text: str
) -> dict[str, str]:
    """Create (with an Idempotency-Key, retried once), claim, reassign with
    ``text`` as the note, resolve with ``text``; the fields as then stored."""
    engineer = auth("engineer")
    headers = {**engineer, "Idempotency-Key": f"key-{session_id}"}
    first = client.post(HANDOFFS, json=body_with(session_id, text), headers=headers)
    assert first.status_code == 201, first.text
    retried = client.post(HANDOFFS, json=body_with(session_id, text), headers=headers)
    assert retried.headers.get("Idempotent-Replayed") == "true", retried.text
    assert retried.json() == first.json()
    handoff_id = first.json()["id"]
    ana, ben = senior(auth, SENIOR_A), senior(auth, SENIOR_B)
    assert client.post(f"{HANDOFFS}/{handoff_id}/claim", headers=ana).status_code == 200
    reassign = {"to_id": SENIOR_B, "to_name": "Ben", "note": text}
    moved = client.post(f"{HANDOFFS}/{handoff_id}/reassign", json=reassign, headers=ana)
    assert moved.status_code == 200, moved.text
    resolved = client.post(
        f"{HANDOFFS}/{handoff_id}/resolve", json={"resolution_notes": text}, headers=ben
    )
    assert resolved.status_code == 200, resolved.text
    events = client.get(f"{HANDOFFS}/{handoff_id}/history", headers=ana).json()["items"]
    [reassigned] = [event for event in events if event["type"] == "handoff_reassigned"]
    fields = stored_fields(resolved.json(), reassigned["data"]["reassignment"]["note"])
    fields["answers"] = first.text + moved.text + resolved.text
    fields["redactions"] = str(resolved.json()["redactions"])
    return fields


def work(redis: Redis, context: WorkerContext, done: Callable[[], bool]) -> None:
    """Run the assessments, then the webhook deliveries, in bursts until ``done()``."""
    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline, "the workers did not finish in time"
        for name in (keys.ASSESSMENTS_QUEUE, keys.NOTIFICATIONS_QUEUE):
            dispatch_due(engine=context.engine, redis=redis, settings=context.settings)
            PromptSimpleWorker([Queue(name, connection=redis)], connection=redis).work(burst=True)


def database_text(engine: Engine) -> str:
    """Every row of every table, as text (JSON columns as stored, then decoded)."""
    metadata = MetaData()
    metadata.reflect(engine)
    parts = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                parts += [repr(tuple(row)), json.dumps(list(row), default=str, ensure_ascii=False)]
    return "\n".join(parts)


def replayed_events(port: int, count: int) -> str:
    token = issue_token(
        secret=TEST_SECRET, sub="u-ana", name="Ana", role=Role.senior, org="acme",
        ttl=timedelta(hours=1),
    )  # fmt: skip
    with SSEClient(port, token=token, last_event_id=0) as stream:
        stream.wait_for(lambda c: len(c.events()) >= count, timeout=30, what=f"{count} events")
        return "\n".join(json.dumps(m.data, ensure_ascii=False) for m in stream.events())


def test_no_secret_of_the_corpus_is_stored_sent_or_logged_and_prose_is_untouched(
    client: TestClient,
    auth: TokenFactory,
    engine: Engine,
    redis: Redis,
    context: WorkerContext,
    stub: OpenAIStub,
    settings: Settings,
    start_replica: StartReplica,
) -> None:
    assert len(SECRETS) >= 30 and len({secret.kind for secret in SECRETS}) >= 12
    assert len(ORDINARY) >= 30
    # Ben signs in once, so he is a senior a claim may be handed to.
    assert client.get("/api/v1/me", headers=senior(auth, SENIOR_B)).status_code == 200
    with Receiver() as receiver:
        hook = client.post("/api/v1/webhooks", json={"url": receiver.url()}, headers=auth("admin"))
        assert hook.status_code == 201, hook.text
        secret_fields = [
            walk_through(client, auth, f"secret-{n}", secret.text)
            for n, secret in enumerate(SECRETS)
        ]
        prose_fields = [
            walk_through(client, auth, f"prose-{n}", sentence)
            for n, sentence in enumerate(ORDINARY)
        ]
        handoffs = len(SECRETS) + len(ORDINARY)
        # Each handoff: created, claimed, reassigned, resolved, then assessed (with the
        # org's resolved handoffs as the assessor's memory).
        events = 5 * handoffs
        work(redis, context, lambda: len(receiver.hook_requests()) >= events)
        webhook_text = "\n".join(request.body.decode() for request in receiver.hook_requests())
    assert len(stub.state.recorded()) == handoffs
    prompts = "\n".join(json.dumps(request.body) for request in stub.state.recorded())
    replica = start_replica(
        api_env(database_url=settings.database_url, redis_url=REDIS_URL, jwt_secret=TEST_SECRET)
    )
    places = {
        "database": database_text(engine),
        "history": history_text(client, auth),
        "SSE replay": replayed_events(replica.port, events),
        "webhooks": webhook_text,
        "LLM prompts": prompts,
    }
    assert places["history"].count('"type":"handoff_') == events
    misses = count_misses(SECRETS, secret_fields, places)
    false_positives = count_false_positives(ORDINARY, prose_fields)
    print_table(misses, false_positives)
    assert sum(misses.values()) == 0, +misses
    assert sum(false_positives.values()) == 0, +false_positives


def history_text(client: TestClient, auth: TokenFactory) -> str:
    admin = auth("admin")
    page = client.get(HANDOFFS, params={"limit": 200}, headers=admin).json()["items"]
    return "\n".join(
        client.get(f"{HANDOFFS}/{item['id']}/history", headers=admin).text for item in page
    )


def count_misses(
    secrets: tuple[Secret, ...], fields: list[dict[str, str]], places: dict[str, str]
) -> Counter[tuple[str, str]]:
    """(kind, where) → how many times a secret's values were found there (or,
    in a field, no marker stood in for them)."""
    misses: Counter[tuple[str, str]] = Counter()
    for secret, stored in zip(secrets, fields, strict=True):
        for field in FIELDS:
            text = stored[field]
            found = sum(value in text for value in secret.values)
            misses[(secret.kind, field)] += found or "[redacted: " not in text
        misses[(secret.kind, "answers")] += sum(
            value in stored["answers"] for value in secret.values
        )
        misses[(secret.kind, "redactions")] += int(stored["redactions"]) < len(FIELDS)
        for where, text in places.items():
            misses[(secret.kind, where)] += sum(value in text for value in secret.values)
    return misses


def count_false_positives(sentences: tuple[str, ...], fields: list[dict[str, str]]) -> Counter[str]:
    """field → how many ordinary sentences it did not keep as they were."""
    changed: Counter[str] = Counter()
    for sentence, stored in zip(sentences, fields, strict=True):
        for field in FIELDS:
            changed[field] += stored[field] != sentence
        changed["redactions"] += stored["redactions"] != "0"
    return changed


def print_table(misses: Counter[tuple[str, str]], false_positives: Counter[str]) -> None:
    kinds = Counter(secret.kind for secret in SECRETS)
    print(f"\nredaction corpus: {len(SECRETS)} secrets of {len(kinds)} kinds, "
          f"{len(ORDINARY)} ordinary sentences")  # fmt: skip
    print(f"{'kind':<28}{'secrets':>8}{'misses':>8}  where")
    for kind, count in sorted(kinds.items()):
        missed = sum(n for (k, _), n in misses.items() if k == kind)
        where = ", ".join(sorted({w for (k, w), n in misses.items() if k == kind and n}))
        print(f"{kind:<28}{count:>8}{missed:>8}  {where}")
    print(f"{'misses (all places)':<36}{sum(misses.values()):>8}")
    print(f"{'false positives (all fields)':<36}{sum(false_positives.values()):>8}")
