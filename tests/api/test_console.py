"""The console's static files and the demo sign-in."""

import time
from collections.abc import Callable, Iterator

import jwt
import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.console_enums import ENUMS_JS, render
from shared.auth.demo_users import DEMO_USERS
from shared.core.settings import Settings
from shared.events.models import EventType
from tests.conftest import REDIS_URL, TEST_SECRET


@pytest.fixture
def make_client(sqlite_url: str) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**settings: object) -> TestClient:
        app = create_app(
            Settings(
                database_url=sqlite_url, redis_url=REDIS_URL, jwt_secret=TEST_SECRET, **settings
            )
        )
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_the_page_is_served_at_the_root_with_relative_asset_urls(make_client) -> None:
    response = make_client().get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert 'src="console/app.js"' in response.text  # relative: works behind a proxy
    assert 'href="/' not in response.text and 'src="/' not in response.text


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
        ("/console/charts.js", "text/javascript"),
        ("/console/favicon.svg", "image/svg+xml"),
    ],
)
def test_assets_are_served_and_revalidated(make_client, path: str, content_type: str) -> None:
    response = make_client().get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"]


def test_a_missing_asset_is_a_json_404(make_client) -> None:
    response = make_client().get("/console/nope.js")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_demo_sign_in_is_off_by_default(make_client) -> None:
    client = make_client()
    assert client.get("/api/v1/demo").json() == {"enabled": False}
    response = client.post("/api/v1/demo/sign-in", json={"role": "senior"})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert client.post("/api/v1/demo/sign-in", content=b"junk").status_code == 404


@pytest.mark.parametrize(
    ("role", "sub", "name"),
    [
        ("engineer", "demo-junior", "Jamie Junior"),
        ("senior", "demo-senior", "Sam Senior"),
        ("admin", "demo-admin", "Alex Admin"),
    ],
)
def test_demo_sign_in_gives_a_12_hour_token_for_the_demo_user(
    make_client, role: str, sub: str, name: str
) -> None:
    client = make_client(demo_sign_in=True)
    assert client.get("/api/v1/demo").json() == {"enabled": True}
    response = client.post("/api/v1/demo/sign-in", json={"role": role})
    assert response.status_code == 200
    token = response.json()["token"]
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    assert [claims[key] for key in ("sub", "name", "role", "org")] == [sub, name, role, "demo"]
    assert 12 * 3600 - 60 < claims["exp"] - time.time() <= 12 * 3600
    listed = client.get("/api/v1/handoffs", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200


def test_demo_sign_in_refuses_unknown_roles(make_client) -> None:
    response = make_client(demo_sign_in=True).post("/api/v1/demo/sign-in", json={"role": "root"})
    assert response.status_code == 422
    assert response.json()["fields"][0]["loc"] == ["body", "role"]


def test_config_serves_the_event_types_and_no_demo_users_when_demo_is_off(make_client) -> None:
    response = make_client().get("/console/config.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    body = response.json()
    assert body["event_types"] == [event_type.value for event_type in EventType]
    assert body["demo"] == {"enabled": False, "users": []}
    assert body["sso"] == {"enabled": False, "display_name": "SSO"}


def test_config_lists_the_demo_users_when_demo_sign_in_is_on(make_client) -> None:
    body = make_client(demo_sign_in=True).get("/console/config.json").json()
    assert body["demo"]["enabled"] is True
    assert body["demo"]["users"] == [
        {"role": role.value, "id": sub, "name": name} for role, (sub, name) in DEMO_USERS.items()
    ]


def test_the_consoles_enums_are_the_python_enums() -> None:
    assert ENUMS_JS.read_text(encoding="utf-8") == render(), (
        "services/api/console/enums.js is out of date: run python -m services.api.console_enums"
    )
