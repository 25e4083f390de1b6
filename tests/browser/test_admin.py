"""Demo sign-in (as ``escalations up`` offers it) and the admin's analytics."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from shared.auth.tokens import issue_token
from shared.core.models import Role
from tests.browser.conftest import OpenConsole, Org, Problems, Stack, wait_live

pytestmark = pytest.mark.slow


def test_demo_sign_in_as_admin_shows_analytics_as_numbers_and_svg_charts(
    stack: Stack, console: OpenConsole
) -> None:
    demo = Org(id="demo", api_url=stack.url)
    demo.token("engineer", "demo-junior", "Jamie Junior")
    demo.token("senior", "demo-senior", "Sam Senior")
    claimed = demo.create("demo-junior", "demo-analytics-1", snapshot={"problem_domain": "auth"})
    demo.create("demo-junior", "demo-analytics-2")
    assert demo.call("demo-senior", "POST", f"handoffs/{claimed['id']}/claim").status_code == 200

    page = console(None)
    expect(page.get_by_role("heading", name="Try the demo")).to_be_visible()
    page.get_by_role("button", name=re.compile("Sign in as Alex Admin")).click()
    wait_live(page)
    expect(page.locator(".user-name")).to_have_text("Alex Admin")

    page.get_by_role("link", name="Analytics").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Escalation analytics")
    expect(page.locator("#stat-total .stat-value")).to_have_text("2")
    expect(page.locator("#stat-total")).to_contain_text("1 waiting · 1 in progress")
    expect(page.locator("#stat-claim .stat-sub")).to_contain_text("n=1")
    expect(page.locator("#stat-sla .stat-value")).to_have_text("0")
    for chart in ("#chart-claim-by-domain", "#chart-by-status", "#chart-sla"):
        expect(page.locator(f"{chart} svg[role=img]")).to_be_visible()
    by_domain = page.locator("#chart-claim-by-domain svg")
    expect(by_domain.locator(".row-label")).to_have_count(2)
    expect(by_domain).to_contain_text("auth (1)")
    expect(page.locator("#chart-by-status svg rect.bar")).to_have_count(4)

    # Live: a new escalation shows up in the numbers without a reload.
    demo.create("demo-junior", "demo-analytics-3")
    expect(page.locator("#stat-total .stat-value")).to_have_text("3")

    page.get_by_role("radio", name="24 hours").click()
    expect(page.get_by_role("radio", name="24 hours")).to_have_attribute("aria-checked", "true")
    expect(page.locator("#stat-total .stat-value")).to_have_text("3")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Sign in as Sam Senior"))).to_be_visible()


def test_bad_tokens_are_refused_on_the_sign_in_page(
    console: OpenConsole, problems: Problems
) -> None:
    page = console(None)
    page.get_by_label("Access token").fill("not-a-token")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("does not look like a token")

    forged = issue_token(
        secret="another-secret-" + "x" * 32, sub="s-1", name="Mallory", role=Role.admin,
        org="acme", ttl=timedelta(hours=1),
    )  # fmt: skip
    problems.expect(401, "/api/v1/events/session")
    page.get_by_label("Access token").fill(forged)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("The server refused this token")
    expect(page.locator("#topbar")).to_be_hidden()
