"""The junior's side in a real browser: the escalation form with the server's
validation errors next to the fields, then following the escalation live."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OpenConsole, Org, Problems, reload

pytestmark = pytest.mark.slow


def test_form_shows_validation_errors_then_escalates_and_the_junior_follows_it_live(
    org: Org, console: OpenConsole, problems: Problems
) -> None:
    senior = console(org.token("senior", "s-1", "Sam Senior"))
    junior = console(org.token("engineer", "j-1", "Jo Junior"))
    expect(junior.get_by_role("heading", level=1)).to_have_text("My escalations")
    expect(junior.get_by_text("You have not escalated anything yet.")).to_be_visible()

    junior.get_by_role("link", name="Escalate a session").first.click()
    expect(junior.get_by_role("heading", level=1)).to_have_text("Escalate a session")
    junior.get_by_label("Session ID").fill("sess-form-1")
    junior.get_by_label("Domain").fill("database")
    junior.get_by_label("Step 1", exact=True).fill("Restarted the API pods")
    junior.get_by_label("Outcome of step 1").fill("Errors came back within a minute")

    # Problem summary left empty: the server says 422 and the form says where.
    problems.expect(422, "/api/v1/handoffs")
    junior.get_by_role("button", name="Escalate to a senior").click()
    summary_box = junior.get_by_label("Problem summary")
    expect(junior.locator("#f-snapshot-problem_summary-error")).to_have_text("Required.")
    expect(summary_box).to_have_attribute("aria-invalid", "true")
    expect(summary_box).to_be_focused()
    expect(junior.get_by_role("alert")).to_contain_text("Please fix the highlighted field.")
    assert problems.seen_expected == [(422, "/api/v1/handoffs")]

    summary = "orders API returns 500: too many connections"
    summary_box.fill(summary)
    junior.get_by_label("Priority").select_option("high")
    junior.get_by_role("button", name="Escalate to a senior").click()
    expect(junior).to_have_url(re.compile(r"#/mine\?new="))
    mine = junior.locator("#mine-list .card")
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text(summary)
    expect(mine).to_contain_text("Waiting for a senior")
    handoff_id = mine.get_attribute("data-id")
    assert handoff_id

    # The senior sees it arrive, opens it, claims it and hides the suggestions.
    arrived = senior.locator(f'#queue-list .card[data-id="{handoff_id}"]')
    expect(arrived).to_contain_text(summary)
    expect(arrived.locator(".unread-dot")).to_be_visible()
    expect(arrived.locator(".prio")).to_have_text("high")
    arrived.get_by_role("link").click()
    expect(senior.locator(".steps")).to_contain_text("Restarted the API pods")
    expect(senior.locator(".assessment")).to_have_attribute("data-state", "ready")
    senior.get_by_role("button", name="Claim", exact=True).click()
    expect(senior.locator(".chips .chip").first).to_be_visible()
    expect(senior.get_by_label("Resolution notes")).to_be_focused()
    senior.get_by_role("button", name="Hide suggested steps").click()
    expect(senior.locator(".chips-box")).to_be_hidden()
    reload(senior)
    expect(senior.locator(".work")).to_be_visible()
    expect(senior.locator(".chips-box")).to_be_hidden()  # closed stays closed

    expect(mine).to_contain_text("Sam Senior is on it")
    expect(mine.locator(".status")).to_have_text("In progress")
    expect(junior.locator("#announcer")).to_contain_text("Sam Senior claimed your escalation")

    senior.get_by_label("Resolution notes").fill("PgBouncer in front; pool size 10 per pod.")
    senior.get_by_role("button", name="Resolve").click()
    expect(senior.locator(".hv-head .status")).to_have_text("Resolved")

    expect(mine.locator(".status")).to_have_text("Resolved")
    expect(mine).to_contain_text("Resolved by Sam Senior")
    expect(mine.locator(".resolution-box")).to_contain_text("PgBouncer in front")


def test_a_session_escalated_twice_is_refused_next_to_the_session_field(
    org: Org, console: OpenConsole, problems: Problems
) -> None:
    org.token("engineer", "j-1", "Jo Junior")
    org.create("j-1", "sess-dup")
    junior = console(org.users["j-1"][2], path="#/escalate")
    expect(junior.get_by_role("heading", level=1)).to_have_text("Escalate a session")
    junior.get_by_label("Problem summary").fill("Still broken")
    junior.get_by_label("Domain").fill("ci")
    junior.get_by_label("Session ID").fill("sess-dup")

    problems.expect(409, "/api/v1/handoffs")
    junior.get_by_role("button", name="Escalate to a senior").click()
    expect(junior.locator("#f-session_id-error")).to_contain_text("already")
    expect(junior.get_by_label("Session ID")).to_be_focused()
