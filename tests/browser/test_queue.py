"""The senior queue in real browsers: live arrivals, the claim race, the
assessment filling in place, unread dots and the ``(N)`` title."""

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    OpenConsole,
    Org,
    Problems,
    Stack,
    pump_until,
    reload,
    set_hidden,
)

pytestmark = pytest.mark.slow


def card(page: Page, handoff_id: str) -> Any:
    return page.locator(f'#queue-list .card[data-id="{handoff_id}"]')


def test_two_seniors_see_it_live_race_to_claim_and_the_assessment_fills_in(
    stack: Stack, org: Org, console: OpenConsole, problems: Problems
) -> None:
    org.token("engineer", "j-1", "Jo Junior")
    ana = console(org.token("senior", "s-ana", "Ana Senior"))
    ben = console(org.token("senior", "s-ben", "Ben Senior"))
    for page in (ana, ben):
        expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()

    stack.pause_worker()  # keep the assessment pending while both look at it
    try:
        handoff = org.create("j-1", "sess-race", priority="urgent")
        summary = handoff["snapshot"]["problem_summary"]
        for page in (ana, ben):
            arrived = card(page, handoff["id"])
            expect(arrived).to_contain_text(summary)
            expect(arrived.locator(".unread-dot")).to_be_visible()
            expect(page.locator("#notif-count")).to_have_text("1")
            expect(page.locator("#announcer")).to_contain_text(summary)
            arrived.get_by_role("link").click()
            expect(page.locator(".assessment")).to_have_attribute("data-state", "pending")
            expect(page.get_by_role("heading", level=1)).to_have_text(summary)
            expect(page.get_by_text("What has been tried")).to_be_visible()
            expect(page.locator(".steps li")).to_have_count(2)
    finally:
        stack.resume_worker()

    for page in (ana, ben):  # no reload: the event fills it in
        expect(page.locator(".assessment")).to_have_attribute("data-state", "ready")
        expect(page.locator(".assessment")).to_contain_text("Suggested next steps")
    steps = org.get("s-ana", handoff["id"])["ai_assessment_data"]["suggested_steps"]
    assert steps

    # Both press Claim; both requests are held until both are in flight.
    problems.expect(409, f"/handoffs/{handoff['id']}/claim")
    held: list[Any] = []
    for page in (ana, ben):
        page.route("**/api/v1/handoffs/*/claim", lambda route: held.append(route))
        page.get_by_role("button", name="Claim", exact=True).click()
    pump_until(ana, lambda: len(held) == 2, "two held claims")
    for route in held:
        route.continue_()

    for page in (ana, ben):
        expect(page.locator(".work").or_(page.locator(".toast-warning"))).to_be_visible()
    winner, loser = (ana, ben) if ana.locator(".work").count() else (ben, ana)
    winner_name = "Ana Senior" if winner is ana else "Ben Senior"

    expect(loser.locator(".toast-warning")).to_have_text(
        re.compile(rf"Already claimed by {winner_name} (just now|\d+ seconds ago)\.")
    )
    expect(loser).to_have_url(re.compile(r"#/queue$"))
    expect(loser.get_by_role("heading", level=1)).to_have_text("Queue")
    expect(card(loser, handoff["id"])).to_have_count(0)
    expect(loser.locator(".rows")).to_contain_text(winner_name)
    assert [status for status, _ in problems.seen_expected] == [409]

    # The winner gets the suggested steps as chips above the notes box.
    chips = winner.locator(".chips .chip")
    expect(chips).to_have_count(len(steps))
    chips.first.click()
    notes = winner.get_by_label("Resolution notes")
    expect(notes).to_have_value(steps[0])
    notes.press("End")
    notes.type("\nRaised the pool size; error rate back to zero.")
    winner.get_by_role("button", name="Resolve").click()
    expect(winner.locator(".chips-box")).to_be_hidden()  # the first send hides them
    expect(winner.locator(".hv-head .status")).to_have_text("Resolved")
    expect(winner.locator(".resolution")).to_contain_text("error rate back to zero")
    expect(loser.locator(".rows")).not_to_contain_text(summary)


def test_unread_dot_clears_on_open_not_on_hover_and_stays_cleared_after_reload(
    org: Org, console: OpenConsole
) -> None:
    org.token("engineer", "j-1", "Jo Junior")
    page = console(org.token("senior", "s-1", "Sam Senior"))
    first = org.create("j-1", "sess-a", snapshot={"problem_summary": "Kafka consumers stalled"})
    second = org.create("j-1", "sess-b", snapshot={"problem_summary": "TLS handshake failures"})
    for handoff in (first, second):
        expect(card(page, handoff["id"]).locator(".unread-dot")).to_be_visible()
    expect(page.locator("#notif-count")).to_have_text("2")

    card(page, first["id"]).hover()
    expect(card(page, first["id"]).locator(".unread-dot")).to_be_visible()

    card(page, first["id"]).get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Kafka consumers stalled")
    page.get_by_role("link", name="← Queue").click()
    expect(card(page, first["id"]).locator(".unread-dot")).to_have_count(0)
    expect(card(page, second["id"]).locator(".unread-dot")).to_be_visible()
    expect(page.locator("#notif-count")).to_have_text("1")

    reload(page)
    expect(card(page, first["id"])).to_be_visible()
    expect(card(page, first["id"]).locator(".unread-dot")).to_have_count(0)
    expect(card(page, second["id"]).locator(".unread-dot")).to_be_visible()
    expect(page.locator("#notif-count")).to_have_text("1")


def test_title_counts_arrivals_while_the_tab_is_hidden(org: Org, console: OpenConsole) -> None:
    org.token("engineer", "j-1", "Jo Junior")
    page = console(org.token("senior", "s-1", "Sam Senior"))
    expect(page).to_have_title("Queue · Escalation Mode")

    set_hidden(page, True)
    org.create("j-1", "sess-hidden-1")
    expect(page).to_have_title("(1) Queue · Escalation Mode")
    org.create("j-1", "sess-hidden-2")
    expect(page).to_have_title("(2) Queue · Escalation Mode")

    set_hidden(page, False)
    expect(page).to_have_title("Queue · Escalation Mode")
    expect(page.locator("#queue-list .card")).to_have_count(2)


def test_queue_is_in_queue_order_and_refetched_after_a_reconnect(
    stack: Stack, org: Org, console: OpenConsole, problems: Problems
) -> None:
    org.token("engineer", "j-1", "Jo Junior")
    page = console(org.token("senior", "s-1", "Sam Senior"))
    low = org.create("j-1", "sess-low", priority="low")
    urgent = org.create("j-1", "sess-urgent", priority="urgent")
    normal = org.create("j-1", "sess-normal", priority="normal")
    expect(page.locator("#queue-list .card")).to_have_count(3)
    order = page.locator("#queue-list .card").evaluate_all("els => els.map(e => e.dataset.id)")
    assert order == [urgent["id"], normal["id"], low["id"]]

    # The API goes away; while it is down a change is made that no event will ever
    # announce (written straight to the database). Only the refetch that follows
    # the reconnect's `ready` can show it.
    problems.expect_stream_outage()
    stack.api.stop()
    expect(page.locator("#live-pill")).to_have_text("Reconnecting…")
    stack.claim_behind_the_streams_back(normal["id"], name="Quiet Senior")
    stack.restart_api()
    expect(page.locator("#live-pill")).to_have_text("Live", timeout=30_000)
    expect(page.locator(".rows")).to_contain_text("Quiet Senior")
    expect(card(page, normal["id"])).to_have_count(0)
