"""The admin's Webhooks page in a real browser: a subscription added through
the form (a refused URL first, its error next to the field), the secret shown
once, a test sent to a loopback receiver and its delivery in the log, then
disable, rotate and the two-click delete.

Loopback targets need ``ESCALATIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true`` in
the API (checked at creation) and in the worker (checked at each try): the
test starts a second API replica with it over the stack's database and Redis,
and swaps the stack's worker for one with it, putting the usual one back at
the end.
"""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from testkit.procs import base_url, free_port, start_api
from testkit.webhook_receiver import Receiver
from tests.browser.conftest import (
    OpenConsole,
    Org,
    Problems,
    Stack,
    pump_until,
    reload,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.slow

SECRET = re.compile(r"^whsec_\S{20,}$")


@pytest.fixture
def private_api(stack: Stack) -> Iterator[str]:
    """The URL of an API replica (and a worker) that allow loopback webhook targets."""
    env = {**stack.env, "ESCALATIONS_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"}
    api = start_api(free_port(), env=env, log_dir=stack.log_dir)
    stack.replace_worker(webhook_allow_private_networks="true")
    try:
        yield base_url(api.port) + "/"
    finally:
        api.stop()
        stack.replace_worker()


def open_webhooks(console: OpenConsole, url: str, token: str) -> Page:
    page = console(None)
    page.goto(url)
    sign_in(page, token)
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
    return page


def test_admin_adds_a_webhook_sees_the_secret_once_and_the_test_delivery(
    org: Org, console: OpenConsole, problems: Problems, private_api: str
) -> None:
    page = open_webhooks(console, private_api, org.token("admin", "a-1", "Alex Admin"))
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()

    # A URL the API refuses: its reason next to the field, which takes the focus.
    problems.expect(422, "/api/v1/webhooks")
    page.get_by_role("button", name="Add webhook").click()
    form = page.locator(".webhook-form")
    form.get_by_label("Endpoint URL").fill("ftp://example.com/hook")
    form.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#webhook-url-error")).to_be_visible()
    expect(form.get_by_label("Endpoint URL")).to_be_focused()
    expect(form.get_by_label("Endpoint URL")).to_have_attribute("aria-invalid", "true")

    with Receiver() as receiver:
        form.get_by_label("Endpoint URL").fill(receiver.url())
        form.get_by_label("Format").select_option("standard")
        form.locator('input[value="handoff_resolved"]').uncheck()
        form.get_by_label("Description").fill("Ops bot")
        form.get_by_role("button", name="Add webhook").click()

        secret = page.locator("#webhook-secret")
        expect(secret).to_have_text(SECRET)
        expect(page.locator(".secret-panel")).to_contain_text("you will not see it again")
        card = page.locator("#webhook-list .webhook-card")
        expect(card).to_have_count(1)
        expect(card).to_contain_text(receiver.url())
        expect(card).to_contain_text("Ops bot")
        expect(card.locator("code", has_text="handoff_resolved")).to_have_count(0)
        page.get_by_role("button", name="I have stored it").click()
        expect(secret).to_have_count(0)
        reload(page)
        expect(page.locator("#webhook-list .webhook-card")).to_have_count(1)
        expect(page.locator("#webhook-secret")).to_have_count(0)  # never shown again

        card = page.locator("#webhook-list .webhook-card")
        card.get_by_role("button", name="Send test").click()
        rows = card.locator(".delivery-log tbody tr")
        expect(rows).to_have_count(1)
        row = rows.first
        first_id = row.get_attribute("data-id")
        expect(row).to_have_attribute("data-status", "delivered")
        expect(row).to_contain_text("webhook_test")
        expect(row.locator("td").nth(3)).to_have_text("200")
        assert len(receiver.hook_requests()) == 1
        expect(card.get_by_role("button", name="Load more")).to_be_hidden()  # one page
        screenshot(page, "webhooks.png")

        row.get_by_role("button", name="Redeliver").click()
        expect(row).to_have_attribute("data-status", "delivered")
        expect(row.locator("td").nth(2)).to_have_text("2")
        assert len(receiver.hook_requests()) == 2

        # Twenty more: the log shows a page of 20 and "Load more" follows next_cursor.
        webhook_id = card.get_attribute("data-id")
        for _ in range(20):
            sent = org.call("a-1", "POST", f"webhooks/{webhook_id}/test")
            assert sent.status_code == 202, sent.text
        pump_until(page, lambda: len(receiver.hook_requests()) == 22, "22 requests received")
        card.get_by_role("button", name="Refresh").click()
        expect(rows).to_have_count(20)
        expect(card.locator('.delivery-log tbody tr[data-status="pending"]')).to_have_count(0)
        card.get_by_role("button", name="Load more").click()
        expect(rows).to_have_count(21)
        expect(rows.last).to_have_attribute("data-id", first_id)
        expect(card.get_by_role("button", name="Load more")).to_be_hidden()

    # Disable, then a test is refused next to the action.
    problems.expect(409, "/test")
    card.get_by_role("button", name="Disable").click()
    expect(card.locator(".badge", has_text="Disabled")).to_be_visible()
    card.get_by_role("button", name="Send test").click()
    expect(card.locator(".field-error")).to_contain_text("disabled")
    card.get_by_role("button", name="Enable").click()
    expect(card.locator(".badge", has_text="Enabled")).to_be_visible()

    # Rotate: two clicks, the new secret shown once.
    card.get_by_role("button", name="Rotate secret").click()
    card.get_by_role("button", name="Confirm rotate").click()
    expect(page.locator("#webhook-secret")).to_have_text(SECRET)
    page.get_by_role("button", name="I have stored it").click()

    # Delete: two clicks.
    card.get_by_role("button", name="Delete").click()
    card.get_by_role("button", name="Confirm delete").click()
    expect(page.locator("#webhook-list .webhook-card")).to_have_count(0)
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()


def test_a_loopback_url_is_refused_with_its_reason_where_private_networks_are_not_allowed(
    org: Org, console: OpenConsole, problems: Problems
) -> None:
    problems.expect(422, "/api/v1/webhooks")
    page = console(org.token("admin", "a-1", "Alex Admin"))
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("button", name="Add webhook").click()
    form = page.locator(".webhook-form")
    form.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/hook")
    form.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#webhook-url-error")).to_contain_text("loopback")
    expect(page.locator("#webhook-list .webhook-card")).to_have_count(0)
