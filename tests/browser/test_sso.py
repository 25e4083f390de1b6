"""Sign-in at a real identity provider (an ``oidc-provider-mock`` process) in a
real browser: "Sign in with …" → the provider's page → the live queue as a
senior, a claim, the token renewed on its own, then sign-out: the stream
cookie is revoked and the provider's end-session page is visited. A user whose
groups map to no role is told so.

The replica here has the provider configured (the stack's does not): it runs
over the stack's database and Redis, so the stack's API creates the handoff."""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from testkit import log_leaks
from testkit.procs import Proc, base_url, free_port, start_api
from tests.browser.conftest import OpenConsole, Org, Problems, Stack, wait_live
from tests.identity import CLIENT_SECRET, MAPPING, provider_url, start_mock_provider

pytestmark = pytest.mark.slow
log_leaks.register_secret(CLIENT_SECRET)

#: Short, so the console renews its token while the test watches.
TOKEN_SECONDS = 12


@dataclass
class Sso:
    url: str  # the console's URL on the replica with the provider configured
    provider: Proc


@pytest.fixture
def sso(stack: Stack, org: Org) -> Iterator[Sso]:
    users = [
        {"sub": "dana", "name": "Dana Senior", "groups": ["esc-seniors"], "tenant": org.id},
        {"sub": "cy", "name": "Cy Marketing", "groups": ["marketing"], "tenant": org.id},
    ]
    provider = start_mock_provider(stack.log_dir, *users)
    port = free_port()
    settings = {
        **{key: json.dumps(value) if isinstance(value, dict) else value
           for key, value in MAPPING.items()},
        "oidc_issuer": provider_url(provider),
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_display_name": "Acme SSO",
        "oidc_default_role": "",
        "oidc_session_token_seconds": str(TOKEN_SECONDS),
        "public_url": base_url(port),
    }  # fmt: skip
    env = {**stack.env, **{f"ESCALATIONS_{key.upper()}": value for key, value in settings.items()}}
    api = start_api(port, env=env, log_dir=stack.log_dir)
    try:
        yield Sso(url=base_url(port) + "/", provider=provider)
    finally:
        api.stop()
        provider.stop()


def offline_styles(page: Page) -> None:
    """The provider's page links a stylesheet on a CDN, out of reach here: answer it empty."""
    page.route(
        lambda url: not url.startswith("http://127.0.0.1"),
        lambda route: route.fulfill(status=200, body="", content_type="text/css"),
    )


def open_sso(console: OpenConsole, problems: Problems, sso: Sso) -> Page:
    problems.expect(401, "/auth/session")  # the console asks for a session first: none yet
    page: Page = console(None)
    offline_styles(page)
    page.goto(sso.url)
    return page


def test_a_senior_signs_in_at_the_provider_claims_and_signs_out(
    org: Org, console: OpenConsole, problems: Problems, sso: Sso
) -> None:
    page = open_sso(console, problems, sso)
    expect(page.get_by_role("link", name="Sign in with Acme SSO")).to_be_visible()
    expect(page.get_by_label("Access token")).to_be_hidden()  # behind "Use a token"
    page.get_by_text("Use a token", exact=True).click()
    expect(page.get_by_label("Access token")).to_be_visible()

    page.get_by_role("link", name="Sign in with Acme SSO").click()
    expect(page).to_have_url(
        re.compile(re.escape(provider_url(sso.provider)) + "/oauth2/authorize")
    )
    page.get_by_role("button", name="dana", exact=True).click()
    wait_live(page)
    assert page.url.startswith(sso.url) and "code=" not in page.url
    expect(page.locator(".user-name")).to_have_text("Dana Senior")
    expect(page.locator(".user-role")).to_have_text("senior")

    org.token("engineer", "j-1", "Jo Junior")
    handoff = org.create("j-1", "sess-sso")
    arrived = page.locator(f'#queue-list .card[data-id="{handoff["id"]}"]')
    expect(arrived).to_contain_text(handoff["snapshot"]["problem_summary"])
    arrived.get_by_role("link").click()
    page.get_by_role("button", name="Claim", exact=True).click()
    expect(page.locator(".work")).to_be_visible()
    assert org.get("j-1", handoff["id"])["claimed_by_id"] == "dana"

    # The token lives TOKEN_SECONDS: the console renews it from its session cookie.
    with page.expect_response(lambda r: r.url.endswith("/auth/session") and r.ok,
                              timeout=TOKEN_SECONDS * 1000):  # fmt: skip
        pass
    token = page.evaluate("() => sessionStorage.getItem('escalations.token')")
    log_leaks.register_secret(token)
    mine = httpx.get(f"{sso.url}api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert mine.json()["id"] == "dana"

    cookie = stream_cookie(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(
        re.compile(re.escape(provider_url(sso.provider)) + "/oauth2/end_session")
    )
    page.get_by_role("button", name="End session").click()
    expect(page.get_by_role("link", name="Sign in with Acme SSO")).to_be_visible()
    assert page.url.startswith(sso.url)
    refused = httpx.get(
        f"{sso.url}api/v1/events", cookies={"escalations_stream": cookie}, timeout=5
    )
    assert refused.status_code == 401  # the stream session was revoked


def stream_cookie(page: Page) -> str:
    cookies: list[Any] = page.context.cookies()
    value = next(c["value"] for c in cookies if c["name"] == "escalations_stream")
    return log_leaks.register_secret(value)


def test_a_user_without_a_role_is_told_why(
    console: OpenConsole, problems: Problems, sso: Sso
) -> None:
    page = open_sso(console, problems, sso)
    page.get_by_role("link", name="Sign in with Acme SSO").click()
    page.get_by_role("button", name="cy", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("none of your groups gives you a role")
    expect(page.get_by_role("link", name="Sign in with Acme SSO")).to_be_visible()
