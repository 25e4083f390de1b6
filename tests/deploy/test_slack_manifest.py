"""deploy/slack-app.json (issue 21): the Slack app manifest an admin pastes into
"Create an app from a manifest" asks for the bot scope the service uses and
points interactivity at the endpoint the app really serves."""

import json
from pathlib import Path
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from services.api.app import create_app
from shared.core.settings import DEV_JWT_SECRET, Settings

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-app.json"


def test_the_manifest_asks_for_chat_write_and_names_the_interactivity_endpoint() -> None:
    manifest = json.loads(MANIFEST.read_text())
    assert manifest["oauth_config"]["scopes"]["bot"] == ["chat:write"]
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    url = urlsplit(interactivity["request_url"])
    assert url.scheme == "https"
    # The endpoint answers there: without a signing secret, its own 404 (not the router's).
    client = TestClient(create_app(Settings(jwt_secret=DEV_JWT_SECRET, dev_mode=True)))
    assert client.post(url.path, content=b"payload=%7B%7D").json()["error"] == (
        "slack_not_configured"
    )
    assert manifest["features"]["bot_user"]["display_name"]
