"""The admin's API keys page in a real browser: a key created through the form
(a blank name refused next to the field first), shown once, used by a
machine client to escalate, listed without the key, then revoked with two
clicks and refused."""

import re

import httpx
import pytest
from playwright.sync_api import expect

from testkit import log_leaks
from testkit.procs import poll
from tests.browser.conftest import OpenConsole, Org, Problems, Stack
from tests.conftest import handoff_body

pytestmark = pytest.mark.slow

KEY = re.compile(r"^esk_[A-Za-z0-9_-]{43}$")


def test_admin_creates_a_key_sees_it_once_and_revokes_it(
    stack: Stack, org: Org, console: OpenConsole, problems: Problems
) -> None:
    page = console(org.token("admin", "a-1", "Ada Admin"))
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
    expect(page.get_by_text("No API keys yet.")).to_be_visible()

    page.get_by_role("button", name="Create key").click()
    problems.expect(422, "/api/v1/api-keys")
    page.get_by_role("button", name="Create key").last.click()  # the form's submit, name blank
    expect(page.locator("#api-key-name-error")).to_be_visible()
    page.get_by_label("Name").fill("Assistant backend")
    page.get_by_label("Role").select_option("senior")
    page.get_by_role("button", name="Create key").last.click()

    shown = page.locator("#api-key-secret")
    expect(shown).to_have_text(KEY)
    key = log_leaks.register_secret(shown.text_content() or "")
    card = page.locator("#api-key-list .api-key-card")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Assistant backend")
    expect(card).to_contain_text("never used")
    assert key not in (card.text_content() or "")
    page.get_by_role("button", name="I have stored it").click()
    expect(shown).to_have_count(0)

    created = httpx.post(
        f"{stack.url}api/v1/handoffs",
        json=handoff_body("sess-key"),
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    assert created.json()["created_by_name"] == "Assistant backend"

    card.get_by_role("button", name="Revoke").click()
    card.get_by_role("button", name="Confirm revoke").click()
    expect(page.get_by_text("No API keys yet.")).to_be_visible()
    poll(
        lambda: (
            httpx.get(
                f"{stack.url}api/v1/handoffs", headers={"Authorization": f"Bearer {key}"}
            ).status_code
            == 401
        ),
        timeout=1.0,
        what="401 for the revoked key",
    )
