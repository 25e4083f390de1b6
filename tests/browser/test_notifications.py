"""Browser notifications for a senior (issue 11, done-when 4), in Chromium with
the notification permission granted.

``window.Notification`` is wrapped by a script run in the page that records each
construction (title, options) and keeps the instance, so the test can call the
``onclick`` the console set: headless Chromium shows no notification a test
could click. The wrapper constructs the real ``Notification`` too, so the call
the console makes is the one a browser would show. The tab is "hidden" by
overriding ``document.hidden``/``visibilityState`` and dispatching
``visibilitychange`` (conftest ``set_hidden``): what the console reads is
exactly what a background tab reports.
"""

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import OpenConsole, Org, Problems, reload, set_hidden
from tests.browser.test_routing_queue import networking_policy

pytestmark = pytest.mark.slow

RECORDER = """
(() => {
  const Real = window.Notification;
  const shown = [];
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      shown.push({ title, options: options || {}, instance: this });
    }
    static get permission() { return Real.permission; }
    static requestPermission(...args) { return Real.requestPermission(...args); }
  }
  window.Notification = Recorded;
  window.__shown = shown;
})();
"""


def shown(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(
        "() => window.__shown.map((n) => "
        "({ title: n.title, body: n.options.body, tag: n.options.tag }))"
    )


def recorded(console: OpenConsole, token: str) -> Page:
    """A signed-in page allowed to notify, whose notifications are recorded."""
    page = console(token)
    page.context.grant_permissions(["notifications"])
    page.evaluate(RECORDER)  # notify.js reads window.Notification at each use
    return page


def test_a_hidden_tab_gets_a_notification_for_a_new_escalation_and_clicking_it_opens_it(
    org: Org, console: OpenConsole, problems: Problems
) -> None:
    org.token("engineer", "j-1", "Jo Junior")
    page = recorded(console, org.token("senior", "s-1", "Sam Senior"))

    toggle = page.locator("#notify-toggle")
    expect(toggle).to_have_text("Notify me")
    # Nothing is shown before opting in, even while hidden.
    set_hidden(page, True)
    before = org.create("j-1", "sess-before-opt-in")
    set_hidden(page, False)
    expect(page.locator(f'#queue-list .card[data-id="{before["id"]}"]')).to_have_count(1)
    assert shown(page) == []

    toggle.click()
    expect(toggle).to_have_text("Notifications on")
    expect(toggle).to_have_attribute("aria-pressed", "true")

    # A visible tab gets no notification: the queue already shows it.
    visible = org.create("j-1", "sess-visible")
    expect(page.locator(f'#queue-list .card[data-id="{visible["id"]}"]')).to_have_count(1)
    assert shown(page) == []

    set_hidden(page, True)
    handoff = org.create(
        "j-1", "sess-hidden", priority="urgent", snapshot={"problem_summary": "disk full on db-2"}
    )
    page.wait_for_function("() => window.__shown.length === 1")
    [notification] = shown(page)
    assert notification["title"] == "New urgent escalation"
    assert "disk full on db-2" in notification["body"]
    assert notification["tag"].startswith("event-")

    page.evaluate("() => window.__shown[0].instance.onclick()")
    set_hidden(page, False)
    expect(page).to_have_url(f"{page.url.split('#')[0]}#/handoff/{handoff['id']}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("disk full on db-2")

    # The choice is remembered: after a reload the toggle is still on.
    reload(page)
    expect(page.locator("#notify-toggle")).to_have_text("Notifications on")
    page.locator("#notify-toggle").click()
    expect(page.locator("#notify-toggle")).to_have_text("Notify me")


def opted_in(console: OpenConsole, token: str) -> Page:
    page = recorded(console, token)
    page.locator("#notify-toggle").click()
    expect(page.locator("#notify-toggle")).to_have_text("Notifications on")
    return page


def test_an_escalation_that_reaches_me_and_an_assignment_to_me_notify(
    org: Org, console: OpenConsole, problems: Problems
) -> None:
    """Level 1 (an hour) is team Networking (Ana) in assign mode: Ben, not in
    the team, hears only of the arrival; Ana of the arrival and her assignment."""
    networking_policy(org, mode="assign", level_1_seconds=3600)
    org.token("engineer", "j-1", "Jo Junior")
    ana = opted_in(console, org.token("senior", "s-ana", "Ana Senior"))
    ben = opted_in(console, org.token("senior", "s-ben", "Ben Senior"))
    expect(ben.locator("#online")).to_contain_text("Ana Senior")
    set_hidden(ana, True)
    set_hidden(ben, True)
    org.create(
        "j-1",
        "sess-assign",
        snapshot={"problem_domain": "networking", "problem_summary": "BGP flap"},
    )
    ana.wait_for_function("() => window.__shown.length === 2")
    assert [n["title"] for n in shown(ana)] == ["New normal escalation", "Assigned to you"]
    ben.wait_for_function("() => window.__shown.length === 1")
    assert [n["title"] for n in shown(ben)] == ["New normal escalation"]


def test_a_level_that_moves_to_all_seniors_notifies_a_senior_outside_the_team(
    org: Org, console: OpenConsole, problems: Problems
) -> None:
    networking_policy(org, mode="broadcast", level_1_seconds=3)
    org.token("engineer", "j-1", "Jo Junior")
    ben = opted_in(console, org.token("senior", "s-ben", "Ben Senior"))
    set_hidden(ben, True)
    org.create(
        "j-1",
        "sess-escalate",
        snapshot={"problem_domain": "networking", "problem_summary": "VPN down"},
    )
    ben.wait_for_function("() => window.__shown.length === 2")
    [arrived, escalated] = shown(ben)
    assert arrived["title"] == "New normal escalation"
    assert escalated["title"].startswith("Escalated to you")
    assert "VPN down" in escalated["body"]
    assert arrived["tag"] != escalated["tag"]
