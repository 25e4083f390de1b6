"""Assign mode and Reassign in real browsers: the assignee on the queue card, the
handoff page and the junior's list, then a claim handed to another senior."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OpenConsole, Org
from tests.browser.test_routing_queue import card, networking_policy

pytestmark = pytest.mark.slow


def test_assign_mode_shows_the_assignee_and_reassign_moves_the_claim(
    org: Org, console: OpenConsole
) -> None:
    networking_policy(org, mode="assign", level_1_seconds=3600)
    ana = console(org.token("senior", "s-ana", "Ana Senior"))
    ben = console(org.token("senior", "s-ben", "Ben Senior"))
    junior = console(org.token("engineer", "j-1", "Jo Junior"))
    expect(ben.locator("#online")).to_contain_text("Ana Senior")  # both present

    handoff = org.create("j-1", "sess-assign", snapshot={"problem_domain": "networking"})
    assigned = card(ana, handoff["id"])
    expect(assigned.locator(".assignee")).to_have_text("→ Ana Senior")
    expect(ana.locator("#announcer")).to_contain_text("Assigned to you")
    mine = junior.locator(f'#mine-list .card[data-id="{handoff["id"]}"]')
    expect(mine.locator(".routed-line")).to_have_text(
        "Routed to Networking (level 1), assigned to Ana Senior"
    )

    assigned.get_by_role("link").click()
    expect(ana.locator("#routing-assignee dd")).to_have_text("Ana Senior")
    expect(ana.locator("#escalation-timeline")).to_contain_text("Assigned to Ana Senior at level 1")
    ana.get_by_role("button", name="Claim", exact=True).click()
    expect(ana.get_by_role("heading", name="You are on it")).to_be_visible()

    ana.get_by_text("Reassign to another senior").click()
    ana.get_by_label("Reassign to").select_option(label="Ben Senior")
    ana.get_by_label("Handover note").fill("Ben holds the VPN keys.")
    ana.get_by_role("button", name="Reassign", exact=True).click()
    expect(ana.locator(".actions-panel")).to_contain_text("Ben Senior is working on this")
    timeline = ana.locator("#escalation-timeline")
    expect(timeline).to_contain_text("Reassigned from Ana Senior to Ben Senior by Ana Senior")
    expect(timeline).to_contain_text("Ben holds the VPN keys.")
    assert org.get("j-1", handoff["id"])["claimed_by_id"] == "s-ben"

    # Ben sees it as his, live; the junior sees who has it now.
    expect(ben.locator(".rows")).to_contain_text("You · claimed")
    ben.locator(".rows .row-link").click()
    expect(ben.get_by_role("heading", name="You are on it")).to_be_visible()
    expect(ben.locator("#escalation-timeline")).to_contain_text("Reassigned from Ana Senior")
    expect(mine.locator(".state-line")).to_contain_text("Ben Senior is on it")

    # Ben hands it back without a note (the note is optional).
    ben.get_by_text("Reassign to another senior").click()
    ben.get_by_label("Reassign to").select_option(label="Ana Senior")
    ben.get_by_role("button", name="Reassign", exact=True).click()
    expect(ben.locator(".actions-panel")).to_contain_text("Ana Senior is working on this")
    expect(ana.get_by_role("heading", name="You are on it")).to_be_visible()
    back = ana.locator("#escalation-timeline li").last
    expect(back).to_contain_text("Reassigned from Ben Senior to Ana Senior by Ben Senior")
    expect(back.locator(".timeline-note")).to_have_count(0)

    # The admin's analytics: the claim came at level 1, for Networking, by Ana.
    admin = console(org.users["a-1"][2])
    admin.get_by_role("link", name="Analytics").click()
    expect(admin.locator("#chart-claim-by-team svg")).to_contain_text("Networking (1)")
    expect(admin.locator("#chart-claimed-at-level svg")).to_contain_text("Level 1")
    seniors = admin.locator("#table-seniors tbody")
    expect(seniors.locator("tr").first.locator("th")).to_have_text("Ana Senior")
    expect(seniors.locator("tr").first.locator("td").first).to_have_text("1")


def test_reassign_offers_a_known_senior_who_is_offline(org: Org, console: OpenConsole) -> None:
    """Cy signed in earlier (a call to the API) and is not online: the org's people
    know him as a senior, so he is offered; the junior, known as an engineer, is not."""
    org.token("senior", "s-cy", "Cy Senior")
    assert org.call("s-cy", "GET", "me").status_code == 200
    org.token("engineer", "j-1", "Jo Junior")
    handoff = org.create("j-1", "sess-offline")
    ana = console(org.token("senior", "s-ana", "Ana Senior"))
    card(ana, handoff["id"]).get_by_role("link").click()
    ana.get_by_role("button", name="Claim", exact=True).click()
    expect(ana.get_by_role("heading", name="You are on it")).to_be_visible()

    ana.get_by_text("Reassign to another senior").click()
    choices = ana.get_by_label("Reassign to")
    expect(choices.locator('optgroup[label="Other seniors"] option')).to_have_text(["Cy Senior"])
    choices.select_option(label="Cy Senior")
    ana.get_by_role("button", name="Reassign", exact=True).click()
    expect(ana.locator(".actions-panel")).to_contain_text("Cy Senior is working on this")
    assert org.get("j-1", handoff["id"])["claimed_by_id"] == "s-cy"
