"""The handoff view in a real browser: a failed assessment and its retry, and
the whole claim flow by keyboard alone."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import OpenConsole, Org, Stack

pytestmark = pytest.mark.slow

MAX_TABS = 30


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until the focused element matches ``selector``."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def test_a_failed_assessment_shows_an_error_and_retry_fills_it_in(
    stack: Stack, org: Org, console: OpenConsole
) -> None:
    org.token("engineer", "j-1", "Jo Junior")
    page = console(org.token("senior", "s-1", "Sam Senior"))
    # A worker whose LLM is unreachable: the one attempt fails (retries are 0 here).
    stack.replace_worker(
        assessor="openai", llm_base_url="http://127.0.0.1:9/v1", llm_timeout_seconds="2"
    )
    try:
        handoff = org.create("j-1", "sess-fail")
        page.locator(f'.card[data-id="{handoff["id"]}"] a').click()
        assessment = page.locator(".assessment")
        expect(assessment).to_have_attribute("data-state", "failed", timeout=30_000)
        expect(assessment).to_contain_text("The assessment could not be generated.")
    finally:
        stack.replace_worker()  # back to the heuristic assessor

    with page.expect_response(lambda r: r.url.endswith("/assessment/retry")) as retried:
        page.get_by_role("button", name="Retry assessment").click()
    assert retried.value.status == 202
    expect(assessment).to_have_attribute("data-state", "ready")
    expect(assessment).to_contain_text("Likely causes")
    expect(page.locator(".activity")).to_contain_text("AI assessment failed")
    expect(page.locator(".activity")).to_contain_text("AI assessment ready")


def test_the_queue_and_a_claim_work_by_keyboard_alone(org: Org, console: OpenConsole) -> None:
    org.token("engineer", "j-1", "Jo Junior")
    page = console(org.token("senior", "s-1", "Sam Senior"))
    handoff = org.create("j-1", "sess-keys", snapshot={"problem_summary": "DNS lookups time out"})
    expect(page.locator(f'.card[data-id="{handoff["id"]}"]')).to_be_visible()

    tab_to(page, ".card-link")
    page.keyboard.press("Enter")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("DNS lookups time out")
    expect(heading).to_be_focused()
    expect(page.locator(".assessment")).to_have_attribute("data-state", "ready")

    tab_to(page, "button.btn-primary")
    expect(page.locator(":focus")).to_have_text("Claim")
    page.keyboard.press("Enter")
    notes = page.get_by_label("Resolution notes")
    expect(notes).to_be_focused()

    page.keyboard.press("Shift+Tab")  # back to the last suggested step
    expect(page.locator(":focus")).to_have_class(re.compile(r"\bchip\b"))
    page.keyboard.press("Enter")
    expect(notes).not_to_have_value("")
    expect(notes).to_be_focused()
    page.keyboard.type(" Fixed by pointing resolv.conf at the node-local cache.")
    tab_to(page, 'button[type="submit"]')
    page.keyboard.press("Enter")
    expect(page.locator(".hv-head .status")).to_have_text("Resolved")


def test_an_open_handoff_follows_its_slim_events_and_fetches_only_a_resolution(
    org: Org, console: OpenConsole
) -> None:
    """Events carry a slim handoff: another senior's claim shows in the open view
    without a request, and what the full handoff alone holds stays (the
    assessment, the transcript); the resolution's notes come with one fetch."""
    org.token("engineer", "j-1", "Jo Junior")
    org.token("senior", "s-2", "Sue Other")
    page = console(org.token("senior", "s-1", "Sam Senior"))
    handoff = org.create("j-1", "sess-slim")
    card = page.locator(f'.card[data-id="{handoff["id"]}"]')
    expect(card.locator(".ai-ready")).to_be_visible()  # its assessment event came first
    card.locator("a").click()
    assessment = page.locator(".assessment")
    expect(assessment).to_contain_text("Likely causes")
    fetched: list[str] = []
    own_url = f"/api/v1/handoffs/{handoff['id']}"
    page.on("request", lambda r: fetched.append(r.url) if r.url.endswith(own_url) else None)

    assert org.call("s-2", "POST", f"handoffs/{handoff['id']}/claim").status_code == 200
    expect(page.locator(".actions-panel")).to_contain_text("Sue Other is working on this")
    expect(assessment).to_contain_text("Likely causes")
    expect(page.locator(".transcript summary")).to_have_text("Session transcript (1 message)")
    assert fetched == []

    notes = {"resolution_notes": "Raised the memory limit to 1Gi."}
    resolved = org.call("s-2", "POST", f"handoffs/{handoff['id']}/resolve", json=notes)
    assert resolved.status_code == 200
    expect(page.locator(".resolution")).to_have_text("Raised the memory limit to 1Gi.")
    expect(assessment).to_contain_text("Likely causes")
    assert len(fetched) == 1
