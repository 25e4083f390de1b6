"""Schemathesis against the app's own OpenAPI schema, on a real database and Redis,
and regression tests for what it (and hand-made malformed requests) found.

Every operation gets a bounded, derandomized set of generated requests (the
schema's examples, its coverage cases — boundary and invalid values, wrong
methods — and fuzzed ones), sent as an admin, a senior, an engineer or nobody,
with path ids that sometimes name a seeded handoff, team, webhook or delivery.
No answer may be a 5xx, a status the operation does not declare, or a body or
content type its declaration does not allow. Runs on both SQLite and PostgreSQL (the
``settings`` fixture's parameters); about 20 s each.
"""

import json
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.app import create_app
from shared.core.settings import Settings
from tests.api.helpers import assert_error
from tests.conftest import REDIS_URL, TEST_SECRET, TokenFactory, handoff_body

# A fuzzer: minutes of examples, so not in the fast loop (scripts/test --fast).
pytestmark = pytest.mark.slow

HANDOFFS = "/api/v1/handoffs"
TEAMS = "/api/v1/teams"
POLICY = "/api/v1/escalation-policy"
WEBHOOKS = "/api/v1/webhooks"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Who calls: mostly the roles that may do everything, sometimes less or no one.
CALLERS = ("admin", "senior", "admin", "senior", "engineer", None)
#: Fuzzed requests per operation, on top of the schema's examples and coverage cases.
MAX_EXAMPLES = 40

T = TypeVar("T")


def _load_schema() -> schemathesis.BaseSchema:
    # The schema does not depend on settings, and building the app connects to nothing.
    # (A fixture-based lazy schema, ``schemathesis.pytest.from_fixture``, would be
    # neater, but it sets ``Node._nodeid``, which pytest 9 no longer has.)
    app = create_app(
        Settings(database_url="sqlite://", redis_url=REDIS_URL, jwt_secret=TEST_SECRET)
    )
    return schemathesis.openapi.from_dict(app.openapi())


schema = _load_schema()


@pytest.fixture
def seeded_ids(client: TestClient, auth: TokenFactory) -> list[str]:
    """Handoffs in every state (pending, claimed, resolved, cancelled), made through the API."""
    engineer, senior = auth("engineer"), auth("senior", sub="u-42", name="Dana Senior")
    ids = []
    for number in range(6):
        response = client.post(HANDOFFS, json=handoff_body(f"seed-{number}"), headers=engineer)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    for handoff_id in ids[1:4]:
        assert client.post(f"{HANDOFFS}/{handoff_id}/claim", headers=senior).status_code == 200
    resolved = client.post(
        f"{HANDOFFS}/{ids[2]}/resolve", json={"resolution_notes": "Fixed."}, headers=senior
    )
    assert resolved.status_code == 200, resolved.text
    assert client.post(f"{HANDOFFS}/{ids[4]}/cancel", headers=engineer).status_code == 200
    return ids


@pytest.fixture
def seeded_team_ids(client: TestClient, auth: TokenFactory) -> list[str]:
    """Two teams, one of them named by the org's escalation policy."""
    admin = auth("admin")
    ids = []
    for name in ("Networking", "Storage"):
        body = {"name": name, "members": [{"id": "u-42", "name": "Dana"}], "domains": [name]}
        response = client.post(TEAMS, json=body, headers=admin)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    level = {"after_seconds": 60, "target": "team", "team_id": ids[0], "mode": "broadcast"}
    response = client.put(POLICY, json={"levels": [level]}, headers=admin)
    assert response.status_code == 200, response.text
    return ids


@pytest.fixture
def seeded_webhooks(client: TestClient, auth: TokenFactory) -> tuple[list[str], list[str]]:
    """Two webhooks (one disabled) and deliveries of the first: a test and a
    ``handoff_created``. Returns (webhook ids, delivery ids)."""
    admin = auth("admin")
    ids = []
    for number in range(2):
        body = {"url": f"https://93.184.215.14/hook/{number}", "description": f"seed {number}"}
        response = client.post(WEBHOOKS, json=body, headers=admin)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    client.patch(f"{WEBHOOKS}/{ids[1]}", json={"enabled": False}, headers=admin)
    assert client.post(f"{WEBHOOKS}/{ids[0]}/test", headers=admin).status_code == 202
    created = client.post(HANDOFFS, json=handoff_body("seed-webhook"), headers=auth("engineer"))
    assert created.status_code == 201, created.text
    log = client.get(f"{WEBHOOKS}/{ids[0]}/deliveries", headers=admin).json()["items"]
    return ids, [delivery["id"] for delivery in log]


@pytest.fixture
def api_app(
    settings: Settings,
    seeded_ids: list[str],
    seeded_team_ids: list[str],
    seeded_webhooks: tuple[list[str], list[str]],
) -> Iterator[FastAPI]:
    """A fresh app on the test's database and Redis; schemathesis starts its lifespan
    on the first request, and it ends with the test."""
    try:
        yield create_app(settings)
    finally:
        asgi.shutdown_lifespans()


def _pick(case: schemathesis.Case, salt: str, options: Sequence[T]) -> T:
    """A choice that is a pure function of the generated request, so runs repeat.

    (Drawing with ``@schema.given(data=st.data())`` would be more hypothesis-like,
    but schemathesis then skips its coverage phase.)
    """
    seen = repr((salt, case.method, case.path_parameters, case.query, case.headers, case.body))
    return options[zlib.crc32(seen.encode("utf-8", "backslashreplace")) % len(options)]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # Generated bodies are large and slow to make by design; fixtures are per test
    # on purpose (the database state carries across examples, like a real client's).
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_conforms_to_its_schema(
    case: schemathesis.Case,
    api_app: FastAPI,
    seeded_ids: list[str],
    seeded_team_ids: list[str],
    seeded_webhooks: tuple[list[str], list[str]],
    auth: TokenFactory,
) -> None:
    webhook_ids, delivery_ids = seeded_webhooks
    seeded = {
        "handoff_id": seeded_ids,
        "team_id": seeded_team_ids,
        "webhook_id": webhook_ids,
        "delivery_id": delivery_ids,
    }
    for name, choices in seeded.items():
        if name in (case.path_parameters or {}) and _pick(case, "seeded", (True, False)):
            case.path_parameters[name] = _pick(case, f"{name}-id", choices)
    role = _pick(case, "role", CALLERS)
    headers = auth(role) if role else {}
    case.call_and_validate(
        headers=headers, checks=CHECKS, app=api_app, base_url="http://testserver"
    )


# --- regressions ------------------------------------------------------------------


def assert_declared(method: str, path: str, response: Any) -> None:
    """``response`` has a status the operation declares and a body its schema allows."""
    operation = schema[path][method]
    declared = schema.raw_schema["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in declared, (response.status_code, sorted(declared))
    operation.validate_response(response)


def _create(client: TestClient, headers: dict[str, str], session_id: str = "reg-1") -> str:
    response = client.post(HANDOFFS, json=handoff_body(session_id), headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_conflict_naming_the_status_is_a_409_not_a_500(client: TestClient, auth) -> None:
    """``invalid_state`` puts ``status`` in the body; it collided with
    ``error_response``'s own ``status`` parameter (TypeError, 500)."""
    handoff_id = _create(client, auth("engineer"))
    response = client.post(f"{HANDOFFS}/{handoff_id}/release", headers=auth("admin"))
    body = assert_error(response, 409, "invalid_state")
    assert body["status"] == "pending"
    assert_declared("POST", f"{HANDOFFS}/{{handoff_id}}/release", response)


def test_a_claim_conflict_without_a_claimer_matches_the_declared_409(
    client: TestClient, auth
) -> None:
    """Claim's 409 was declared as the lost-race body only (claimed_by_* required);
    a claim on a cancelled handoff answers the plain ``invalid_state`` body."""
    engineer = auth("engineer")
    handoff_id = _create(client, engineer)
    assert client.post(f"{HANDOFFS}/{handoff_id}/cancel", headers=engineer).status_code == 200
    response = client.post(f"{HANDOFFS}/{handoff_id}/claim", headers=auth("senior"))
    assert_error(response, 409, "invalid_state")
    assert_declared("POST", f"{HANDOFFS}/{{handoff_id}}/claim", response)


def test_a_lost_claim_race_still_matches_the_declared_409(client: TestClient, auth) -> None:
    handoff_id = _create(client, auth("engineer"))
    dana = auth("senior", sub="u-42", name="Dana Senior")
    assert client.post(f"{HANDOFFS}/{handoff_id}/claim", headers=dana).status_code == 200
    response = client.post(f"{HANDOFFS}/{handoff_id}/claim", headers=auth("senior"))
    body = assert_error(response, 409, "handoff_already_claimed")
    assert body["claimed_by_id"] == "u-42"
    assert_declared("POST", f"{HANDOFFS}/{{handoff_id}}/claim", response)


def test_an_idempotency_key_with_nul_is_a_422(client: TestClient, auth) -> None:
    """PostgreSQL refused the NUL in the key lookup (DataError, 500)."""
    headers = {**auth("engineer"), "Idempotency-Key": "key\x00"}
    response = client.post(HANDOFFS, json=handoff_body(), headers=headers)
    assert_error(response, 422, "invalid_idempotency_key")
    assert client.get(HANDOFFS, headers=auth("admin")).json()["items"] == []


@pytest.mark.parametrize(
    "content",
    [
        b'{"session_id": "\xff"}',  # not UTF-8
        b"[" * 100_000 + b"]" * 100_000,  # nested past the JSON parser's recursion limit
        b'{"session_id": ' + b"9" * 5_000 + b"}",  # past Python's int-string limit
    ],
    ids=["invalid-utf8", "deep-nesting", "5000-digit-number"],
)
@pytest.mark.parametrize("route", ["create", "resolve"])
def test_an_undecodable_body_is_a_declared_400(
    client: TestClient, auth, content: bytes, route: str
) -> None:
    """FastAPI answers 400 for a body it cannot decode at all; it was not declared."""
    headers = {**auth("admin"), "Content-Type": "application/json"}
    if route == "create":
        path, template = HANDOFFS, HANDOFFS
    else:
        path = f"{HANDOFFS}/{_create(client, auth('engineer'))}/resolve"
        template = f"{HANDOFFS}/{{handoff_id}}/resolve"
    response = client.post(path, content=content, headers=headers)
    assert_error(response, 400, "bad_request")
    assert_declared("POST", template, response)


@pytest.mark.parametrize("action", ["claim", "release", "cancel", "assessment/retry"])
def test_a_big_body_on_a_bodiless_post_is_a_declared_413(
    client: TestClient, auth, action: str
) -> None:
    """``BodySizeLimit`` answers 413 on every POST; only two routes declared it."""
    handoff_id = _create(client, auth("engineer"))
    response = client.post(
        f"{HANDOFFS}/{handoff_id}/{action}", content=b"x" * (256 * 1024 + 1), headers=auth("admin")
    )
    assert_error(response, 413, "payload_too_large")
    assert_declared("POST", f"{HANDOFFS}/{{handoff_id}}/{action}", response)
    assert client.get(f"{HANDOFFS}/{handoff_id}", headers=auth("admin")).json()["status"] == (
        "pending"
    )


@pytest.mark.parametrize("length", [str(10**12), "9" * 400])
def test_a_huge_content_length_is_413_before_reading(client: TestClient, auth, length: str) -> None:
    headers = {**auth("admin"), "Content-Type": "application/json", "Content-Length": length}
    response = client.post(HANDOFFS, content=b"{}", headers=headers)
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_non_json_content_type_is_a_declared_422(
    client: TestClient, auth, content_type: str
) -> None:
    headers = {**auth("admin"), "Content-Type": content_type}
    response = client.post(HANDOFFS, content=json.dumps(handoff_body()), headers=headers)
    assert_error(response, 422, "validation_error")
    assert_declared("POST", HANDOFFS, response)


@pytest.mark.parametrize("step_count", [2**31, 2**63, 10**30, 1e308])
def test_step_count_past_any_integer_column_is_a_422(
    client: TestClient, auth, step_count: float
) -> None:
    body = handoff_body()
    body["snapshot"] = {**body["snapshot"], "step_count": step_count}  # type: ignore[dict-item]
    response = client.post(HANDOFFS, json=body, headers=auth("admin"))
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize("action", ["", "/history", "/claim", "/release", "/cancel"])
def test_a_very_long_path_id_is_a_404(client: TestClient, auth, action: str) -> None:
    method = "GET" if action in ("", "/history") else "POST"
    response = client.request(method, f"{HANDOFFS}/{'a' * 8_000}{action}", headers=auth("admin"))
    assert_error(response, 404, "handoff_not_found")
