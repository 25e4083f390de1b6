"""``/api/v1/api-keys`` on SQLite and PostgreSQL: admins create (the key shown
once), list and revoke keys; a key acts as ``apikey:<id>`` with its role in the
creating admin's org, is refused soon after it is revoked or expires, is
counted by the rate limits as its own user, and can never manage keys."""

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import Engine, text

from services.api.app import create_app
from shared.core.settings import Settings
from testkit import log_leaks
from testkit.procs import poll
from tests.api.helpers import HANDOFFS, assert_error, create
from tests.conftest import TokenFactory, handoff_body

API_KEYS = "/api/v1/api-keys"


def make_key(
    client: TestClient, auth: TokenFactory, org: str = "acme", **body: Any
) -> dict[str, Any]:
    response = client.post(
        API_KEYS,
        json={"name": "assistant", "role": "engineer", **body},
        headers=auth("admin", org=org),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    log_leaks.register_secret(created["key"])
    return created


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_create_use_list_revoke(client: TestClient, auth: TokenFactory) -> None:
    created = make_key(client, auth, name="Assistant backend", role="engineer")
    assert set(created) == {
        "id", "name", "role", "prefix", "created_by_id", "created_at", "expires_at",
        "last_used_at", "key",
    }  # fmt: skip
    key = created["key"]
    assert key.startswith("esk_") and len(key) >= 4 + 43  # 32 random bytes, URL-safe base64
    assert key.startswith(created["prefix"]) and len(created["prefix"]) < 20
    assert (created["created_by_id"], created["last_used_at"]) == ("admin-1", None)

    handoff = create(client, bearer(key))
    assert handoff["created_by_id"] == f"apikey:{created['id']}"
    assert handoff["created_by_name"] == "Assistant backend"

    listed = client.get(API_KEYS, headers=auth("admin")).json()["items"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None  # recorded on first use
    assert key not in client.get(API_KEYS, headers=auth("admin")).text

    assert client.delete(f"{API_KEYS}/{created['id']}", headers=auth("admin")).status_code == 204
    audit = client.get("/api/v1/audit", headers=auth("admin")).json()["items"]
    assert [(row["kind"], row["target_id"], row["actor_id"]) for row in audit] == [
        ("api_key.revoked", created["id"], "admin-1"),
        ("api_key.created", created["id"], "admin-1"),
    ]
    assert audit[1]["after"]["prefix"] == created["prefix"]
    assert key not in json.dumps(audit)
    took = poll(
        lambda: client.get(HANDOFFS, headers=bearer(key)).status_code == 401,
        timeout=1.0,
        what="401 for the revoked key",
    )
    assert took < 1.0
    assert_error(client.get(HANDOFFS, headers=bearer(key)), 401, "not_authenticated")
    assert client.get(API_KEYS, headers=auth("admin")).json() == {"items": []}
    assert_error(
        client.delete(f"{API_KEYS}/{created['id']}", headers=auth("admin")),
        404,
        "api_key_not_found",
    )


def test_a_key_is_not_one_of_the_orgs_people(client: TestClient, auth: TokenFactory) -> None:
    senior_key = make_key(client, auth, role="senior")
    create(client, bearer(senior_key["key"]))
    people = client.get("/api/v1/people", headers=auth("admin")).json()["items"]
    assert [person["id"] for person in people] == ["admin-1"]  # the admin who made it


def test_a_key_gets_no_stream_cookie(client: TestClient, auth: TokenFactory) -> None:
    key = make_key(client, auth)["key"]
    refused = client.post("/api/v1/events/session", headers=bearer(key))
    assert_error(refused, 403, "api_key_stream_cookie")
    assert "set-cookie" not in refused.headers


def test_a_senior_key_claims_but_never_manages_keys(client: TestClient, auth: TokenFactory) -> None:
    key = make_key(client, auth, role="senior")["key"]
    handoff = create(client, auth("engineer"))
    claimed = client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=bearer(key))
    assert claimed.status_code == 200, claimed.text
    assert_error(client.get(API_KEYS, headers=bearer(key)), 403, "insufficient_role")
    body = {"name": "escalate", "role": "senior"}
    assert_error(client.post(API_KEYS, json=body, headers=bearer(key)), 403)


@pytest.mark.parametrize("role", ["engineer", "senior"])
def test_only_admins_manage_keys(client: TestClient, auth: TokenFactory, role: str) -> None:
    created = make_key(client, auth)
    headers = auth(role)
    body = {"name": "x", "role": "engineer"}
    assert_error(client.post(API_KEYS, json=body, headers=headers), 403, "insufficient_role")
    assert_error(client.get(API_KEYS, headers=headers), 403, "insufficient_role")
    delete = client.delete(f"{API_KEYS}/{created['id']}", headers=headers)
    assert_error(delete, 403, "insufficient_role")
    assert client.get(HANDOFFS, headers=bearer(created["key"])).status_code == 200


def test_another_orgs_key_is_not_found(client: TestClient, auth: TokenFactory) -> None:
    theirs = make_key(client, auth, org="globex")
    assert client.get(API_KEYS, headers=auth("admin")).json() == {"items": []}
    delete = client.delete(f"{API_KEYS}/{theirs['id']}", headers=auth("admin"))
    assert_error(delete, 404, "api_key_not_found")
    assert_error(client.delete(f"{API_KEYS}/not-a-uuid", headers=auth("admin")), 404)
    # Their key sees their org only.
    create(client, auth("engineer"))
    assert client.get(HANDOFFS, headers=bearer(theirs["key"])).json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "root", "role": "admin"},
        {"name": "", "role": "engineer"},
        {"name": "   ", "role": "engineer"},
        {"name": "x" * 65, "role": "engineer"},
        {"name": "x", "role": "engineer", "expires_at": "2020-01-01T00:00:00Z"},
        {"name": "x", "role": "engineer", "expires_at": "2999-01-01T00:00:00"},  # no zone
        {"name": "x", "role": "engineer", "key": "esk_mine"},
    ],
)
def test_bad_bodies_are_422(client: TestClient, auth: TokenFactory, body: dict[str, Any]) -> None:
    assert_error(client.post(API_KEYS, json=body, headers=auth("admin")), 422, "validation_error")
    assert client.get(API_KEYS, headers=auth("admin")).json() == {"items": []}


def test_an_expired_key_is_refused(client: TestClient, auth: TokenFactory, engine: Engine) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat().replace("+00:00", "Z")
    created = make_key(client, auth, expires_at=expires)
    assert created["expires_at"].startswith(expires[:19])
    assert client.get(HANDOFFS, headers=bearer(created["key"])).status_code == 200
    with engine.begin() as connection:  # as if thirty days went by
        connection.execute(
            text("UPDATE api_keys SET expires_at = :past WHERE id = :id"),
            {"past": datetime.now(UTC) - timedelta(seconds=1), "id": created["id"]},
        )
    poll(
        lambda: client.get(HANDOFFS, headers=bearer(created["key"])).status_code == 401,
        timeout=1.0,
        what="401 for the expired key",
    )


def test_unknown_and_malformed_keys_are_401(client: TestClient, auth: TokenFactory) -> None:
    real = make_key(client, auth)["key"]
    for key in ("esk_", "esk_" + "A" * 43, real[:-1], real + "x"):
        assert_error(client.get(HANDOFFS, headers=bearer(key)), 401, "not_authenticated")


def test_last_used_is_written_at_most_once_a_minute(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    created = make_key(client, auth)

    def last_used() -> Any:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT last_used_at FROM api_keys WHERE id = :id"), {"id": created["id"]}
            ).scalar_one()

    assert client.get(HANDOFFS, headers=bearer(created["key"])).status_code == 200
    first = last_used()
    assert first is not None
    deadline = time.monotonic() + 1.2  # past the 0.5 s cache: the row is read again
    while time.monotonic() < deadline:
        assert client.get(HANDOFFS, headers=bearer(created["key"])).status_code == 200
    assert last_used() == first


@pytest.fixture
def tight_client(settings: Settings, engine: Engine, redis: Redis) -> Any:
    tight = settings.model_copy(update={"rate_limit_creates": "2/minute"})
    with TestClient(create_app(tight)) as test_client:
        yield test_client


def test_a_key_is_its_own_user_for_the_rate_limits(
    tight_client: TestClient, auth: TokenFactory
) -> None:
    key = make_key(tight_client, auth)["key"]
    for session_id in ("s-1", "s-2"):
        create(tight_client, bearer(key), session_id=session_id)
    third = tight_client.post(HANDOFFS, json=handoff_body("s-3"), headers=bearer(key))
    assert_error(third, 429, "rate_limited")
    # The admin who made it, and another key, have their own windows.
    create(tight_client, auth("admin"), session_id="s-4")
    other = make_key(tight_client, auth, name="other")["key"]
    create(tight_client, bearer(other), session_id="s-5")
