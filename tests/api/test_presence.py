"""``/api/v1/presence`` over the app, on SQLite and PostgreSQL and the test's
Redis: roles, org isolation, heartbeat expiry (a short heartbeat setting), and
Redis unavailable. Streams making people present: tests/e2e/test_presence.py."""

import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import Engine

from services.api.app import create_app
from shared.core.redis_client import make_redis
from shared.core.settings import Settings
from shared.routing.presence import Presence
from tests.api.helpers import assert_error
from tests.conftest import TokenFactory

PRESENCE = "/api/v1/presence"
HEARTBEAT = f"{PRESENCE}/heartbeat"
#: Only the expiry test runs with a heartbeat this short: the others make several requests
#: in a row and, on a loaded machine, outlived it (a present senior read back as absent).
HEARTBEAT_SECONDS = 1.0


def present(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get(PRESENCE, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_a_heartbeat_makes_a_senior_present_for_everyone_in_the_org(
    client: TestClient, auth: TokenFactory
) -> None:
    before = datetime.now(UTC)
    dana = auth("senior", sub="u-42", name="Dana Senior")
    response = client.post(HEARTBEAT, headers=dana)
    assert response.status_code == 204 and response.content == b""
    for viewer in ("engineer", "senior", "admin"):
        (item,) = present(client, auth(viewer))
        assert {k: v for k, v in item.items() if k != "since"} == {
            "id": "u-42", "name": "Dana Senior", "role": "senior", "streams": 0
        }  # fmt: skip
        assert item["since"].endswith("Z")
        since = datetime.fromisoformat(item["since"])
        assert before.timestamp() - 1 <= since.timestamp() <= time.time() + 1


def test_admins_may_send_heartbeats_and_engineers_may_not(
    client: TestClient, auth: TokenFactory
) -> None:
    assert_error(client.post(HEARTBEAT, headers=auth("engineer")), 403, "insufficient_role")
    assert present(client, auth("admin")) == []
    assert client.post(HEARTBEAT, headers=auth("admin")).status_code == 204
    assert [item["role"] for item in present(client, auth("engineer"))] == ["admin"]


def test_presence_needs_a_token(client: TestClient) -> None:
    assert_error(client.get(PRESENCE), 401, "not_authenticated")
    assert_error(client.post(HEARTBEAT), 401, "not_authenticated")


def test_another_orgs_people_never_appear(client: TestClient, auth: TokenFactory) -> None:
    client.post(HEARTBEAT, headers=auth("senior", sub="g-1", org="globex"))
    client.post(HEARTBEAT, headers=auth("senior", sub="a-1"))
    assert [item["id"] for item in present(client, auth("admin"))] == ["a-1"]
    assert [item["id"] for item in present(client, auth("engineer", org="globex"))] == ["g-1"]
    assert present(client, auth("admin", org="initech")) == []


def test_a_heartbeat_stops_counting_after_the_heartbeat_setting(
    settings: Settings, engine: Engine, redis: Redis, auth: TokenFactory
) -> None:
    short = settings.model_copy(update={"presence_heartbeat_seconds": HEARTBEAT_SECONDS})
    senior = auth("senior")
    with TestClient(create_app(short)) as client:
        assert client.post(HEARTBEAT, headers=senior).status_code == 204
        sent = time.monotonic()
        assert present(client, senior) != []
        while present(client, senior):
            assert time.monotonic() - sent < HEARTBEAT_SECONDS + 2, "still present"
            time.sleep(0.05)
        assert time.monotonic() - sent >= HEARTBEAT_SECONDS - 0.1


def test_without_redis_presence_answers_503_and_the_client_may_retry(
    client: TestClient, auth: TokenFactory, settings: Settings
) -> None:
    unreachable = make_redis("redis://127.0.0.1:1/0")
    state = client.app.state  # type: ignore[attr-defined]
    working, state.presence = (
        state.presence,
        Presence(unreachable, heartbeat_seconds=60, stream_ttl_seconds=30),
    )
    try:
        assert_error(client.get(PRESENCE, headers=auth("engineer")), 503, "presence_unavailable")
        assert_error(client.post(HEARTBEAT, headers=auth("senior")), 503, "presence_unavailable")
    finally:
        state.presence = working
        unreachable.close()
    assert present(client, auth("engineer")) == []  # the refused heartbeat wrote nothing
