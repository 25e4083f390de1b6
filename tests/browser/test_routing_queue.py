"""Routing in the senior's and the junior's views, in real browsers: "For me"
and "All", a handoff's level, target and assignee on its card, the level change
arriving live (the worker's sweep moves it), who is online, the escalation
timeline and Reassign on the handoff page, and the junior seeing where it went."""

from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import OpenConsole, Org

pytestmark = pytest.mark.slow

#: Level 1's wait: long enough to look at level 1, short enough to watch it move.
LEVEL_1_SECONDS = 4


def card(page: Page, handoff_id: str) -> Locator:
    return page.locator(f'#queue-list .card[data-id="{handoff_id}"]')


def show(page: Page, scope: str) -> None:
    page.get_by_role("radio", name=scope).click()
    expect(page.get_by_role("radio", name=scope)).to_have_attribute("aria-checked", "true")


def focus_until_online(page: Page, name: str) -> None:
    """Switch back to the tab (the console refetches who is online on focus) until
    ``name`` is listed: a presence list fetched before that user signed in is
    refreshed by the focus, not by waiting for the 15-second poll."""
    page.wait_for_function(
        """(name) => {
            window.dispatchEvent(new Event("focus"));
            return document.getElementById("online").textContent.includes(name);
        }""",
        arg=name,
        polling=500,
        timeout=5_000,  # well inside the 15-second poll: the focus does it
    )


def networking_policy(
    org: Org, *, mode: str, level_1_seconds: int = LEVEL_1_SECONDS
) -> dict[str, Any]:
    """Team Networking (Ana) owns "networking"; level 1 is that team (for
    ``level_1_seconds``), level 2 all seniors."""
    org.token("admin", "a-1", "Alex Admin")
    team = org.call(
        "a-1",
        "POST",
        "teams",
        json={
            "name": "Networking",
            "members": [{"id": "s-ana", "name": "Ana Senior"}],
            "domains": ["networking"],
        },
    )
    assert team.status_code == 201, team.text
    levels = [
        {"after_seconds": level_1_seconds, "target": "domain_team", "mode": mode},
        {"after_seconds": 3600, "target": "all_seniors", "mode": "broadcast"},
    ]
    policy = org.call("a-1", "PUT", "escalation-policy", json={"levels": levels, "repeat": 0})
    assert policy.status_code == 200, policy.text
    return team.json()


def test_for_me_shows_what_reaches_me_and_the_level_change_arrives_live(
    org: Org, console: OpenConsole
) -> None:
    networking_policy(org, mode="broadcast")
    ana = console(org.token("senior", "s-ana", "Ana Senior"))
    ben = console(org.token("senior", "s-ben", "Ben Senior"))
    junior = console(org.token("engineer", "j-1", "Jo Junior"))
    expect(ana.get_by_role("radio", name="For me")).to_have_attribute("aria-checked", "true")
    focus_until_online(ana, "Ben Senior")  # Ben signed in after Ana's list was fetched
    for page in (ana, ben):
        online = page.locator("#online")
        expect(online).to_contain_text("Ana Senior")
        expect(online).to_contain_text("Ben Senior")
    expect(ben.locator("#online")).to_contain_text("Ben Senior (you)")
    show(ben, "All")

    handoff = org.create("j-1", "sess-vpn", snapshot={"problem_domain": "networking"})
    at_level_1 = card(ana, handoff["id"])
    expect(at_level_1.locator(".level")).to_have_text("Level 1")
    expect(at_level_1.locator(".target")).to_have_text("Networking")
    expect(card(ben, handoff["id"]).locator(".level")).to_have_text("Level 1")  # in "All"
    show(ben, "For me")
    not_for_ben = card(ben, handoff["id"]).count() == 0
    still_level_1 = org.get("j-1", handoff["id"])["escalation_level"] == 0
    assert not_for_ben or not still_level_1  # Ben is not in Networking
    mine = junior.locator(f'#mine-list .card[data-id="{handoff["id"]}"]')
    expect(mine.locator(".routed-line")).to_have_text("Routed to Networking (level 1)")

    # No reload anywhere: the worker's sweep moves it and every view follows.
    reached_ben = card(ben, handoff["id"])
    expect(reached_ben.locator(".level")).to_have_text("Level 2")
    expect(reached_ben.locator(".target")).to_have_text("All seniors")
    expect(card(ana, handoff["id"]).locator(".level")).to_have_text("Level 2")
    expect(mine.locator(".routed-line")).to_have_text("Routed to All seniors (level 2)")
    expect(junior.locator("#announcer")).to_contain_text("Routed to All seniors")

    # The handoff page: where it is now, and the timeline of its moves.
    reached_ben.get_by_role("link").click()
    expect(ben.locator("#routing-level dd")).to_have_text("Level 2")
    expect(ben.locator("#routing-target dd")).to_have_text("All seniors")
    expect(ben.locator("#routing-next dd")).to_have_text("No further level")  # after level 2
    expect(ben.locator("#escalation-timeline")).to_contain_text(
        "Moved to Level 2: All seniors (everyone notified)"
    )
    show(ana, "All")  # remembered per user, across reloads
    ana.reload()
    expect(ana.get_by_role("radio", name="All")).to_have_attribute("aria-checked", "true")


def test_a_team_with_no_members_reaches_every_senior_live(org: Org, console: OpenConsole) -> None:
    """The rule ``GET /handoffs?for=me`` uses, applied to a handoff that arrives on
    the stream: a team nobody is in reaches nobody, so it counts as all seniors'."""
    org.token("admin", "a-1", "Alex Admin")
    empty = org.call("a-1", "POST", "teams", json={"name": "Storage", "members": []})
    assert empty.status_code == 201, empty.text
    levels = [{"after_seconds": 3600, "target": "team", "team_id": empty.json()["id"],
               "mode": "broadcast"}]  # fmt: skip
    policy = org.call("a-1", "PUT", "escalation-policy", json={"levels": levels, "repeat": 0})
    assert policy.status_code == 200, policy.text
    ben = console(org.token("senior", "s-ben", "Ben Senior"))
    expect(ben.get_by_role("radio", name="For me")).to_have_attribute("aria-checked", "true")
    org.token("engineer", "j-1", "Jo Junior")

    handoff = org.create("j-1", "sess-disk", snapshot={"problem_domain": "storage"})
    arrived = card(ben, handoff["id"])  # live, no reload: what the server would list
    expect(arrived.locator(".target")).to_have_text("Storage")
    listed = org.call("s-ben", "GET", "handoffs?status=pending&for=me").json()["items"]
    assert [item["id"] for item in listed] == [handoff["id"]]
