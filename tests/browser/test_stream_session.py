"""The console's stream when the server ends its session: a revoked cookie ends
the open stream with ``session_expired``; the console renews the cookie with
its bearer token and is live again, and the old cookie stays refused."""

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import OpenConsole, Org, Stack, pump_until

pytestmark = pytest.mark.slow

COOKIE = "escalations_stream"


def stream_cookie(page: Page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)


def test_a_revoked_stream_session_is_renewed_with_the_bearer(
    stack: Stack, org: Org, console: OpenConsole
) -> None:
    org.token("engineer", "j-1", "Jo Junior")
    page = console(org.token("senior", "s-1", "Sam Senior"))
    old_cookie = stream_cookie(page)

    with httpx.Client(base_url=stack.url, timeout=10) as elsewhere:  # e.g. signed out elsewhere
        elsewhere.cookies.set(COOKIE, old_cookie)
        assert elsewhere.delete("/api/v1/events/session").status_code == 204

    pump_until(page, lambda: stream_cookie(page) != old_cookie, "a renewed stream cookie")
    expect(page.locator("#live-pill")).to_have_text("Live")
    arrived = org.create("j-1", "sess-after-renewal")
    expect(page.locator(f'#queue-list .card[data-id="{arrived["id"]}"]')).to_be_visible()
    with httpx.Client(base_url=stack.url, timeout=10) as thief:
        thief.cookies.set(COOKIE, old_cookie)
        assert thief.get("/api/v1/events").status_code == 401
