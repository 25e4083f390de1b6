"""The admin's Routing page in a real browser: teams and the escalation policy
made through the forms (not JSON), with the API's refusals shown next to the
fields they concern."""

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import OpenConsole, Org, Problems, reload

pytestmark = pytest.mark.slow


def fill_team(page: Page, name: str, members: list[tuple[str, str]], domains: str) -> None:
    form = page.locator(".team-form")
    form.get_by_label("Team name").fill(name)
    for number, (member_id, member_name) in enumerate(members, start=1):
        if number > 1:
            form.get_by_role("button", name="+ Add a member").click()
        form.get_by_label(f"Member {number} ID").fill(member_id)
        form.get_by_label(f"Member {number} name").fill(member_name)
    form.get_by_label("Owned domains").fill(domains)


def team_card(page: Page, name: str) -> Locator:
    return page.locator("#team-list .team-card", has=page.locator(".card-title", has_text=name))


def test_admin_makes_teams_and_a_policy_through_the_forms(
    org: Org, console: OpenConsole, problems: Problems
) -> None:
    page = console(org.token("admin", "a-1", "Alex Admin"))
    page.get_by_role("link", name="Routing").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Routing")
    expect(page.locator("#policy-state")).to_contain_text("No policy is set")

    page.get_by_role("button", name="New team").click()
    members = [("s-ana", "Ana Senior"), ("s-ben", "Ben Senior")]
    fill_team(page, "Networking", members, "networking, dns")
    page.get_by_role("button", name="Create team").click()
    networking = team_card(page, "Networking")
    expect(networking).to_contain_text("Members: Ana Senior, Ben Senior")
    expect(networking).to_contain_text("networking")

    # A domain another team owns, and a member without a name: refused, next to the fields.
    problems.expect(409, "/api/v1/teams")
    problems.expect(422, "/api/v1/teams")
    page.get_by_role("button", name="New team").click()
    fill_team(page, "Databases", [("s-cai", "")], "database, dns")
    page.get_by_role("button", name="Create team").click()
    member_name = page.get_by_label("Member 1 name")
    expect(member_name).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".team-form .member-row .field-error").nth(1)).to_have_text("Required.")
    page.get_by_label("Member 1 name").fill("Cai Senior")
    page.get_by_role("button", name="Create team").click()
    expect(page.locator("#team-domains-error")).to_contain_text("belongs to team 'Networking'")
    expect(page.get_by_label("Owned domains")).to_be_focused()
    page.get_by_label("Team name").fill("Networking")
    page.get_by_label("Owned domains").fill("database")
    page.get_by_role("button", name="Create team").click()
    expect(page.locator("#team-name-error")).to_contain_text("A team named 'Networking' exists")
    page.get_by_label("Team name").fill("Databases")
    page.get_by_role("button", name="Create team").click()
    expect(team_card(page, "Databases")).to_contain_text("Members: Cai Senior")

    # Edit: a third member for Networking (PUT replaces the whole team).
    networking.get_by_role("button", name="Edit team Networking").click()
    expect(page.get_by_label("Member 2 name")).to_have_value("Ben Senior")
    page.get_by_role("button", name="+ Add a member").click()
    page.get_by_label("Member 3 ID").fill("s-dee")
    page.get_by_label("Member 3 name").fill("Dee Senior")
    page.get_by_role("button", name="Save team").click()
    expect(networking).to_contain_text("Members: Ana Senior, Ben Senior, Dee Senior")
    expect(page.locator(".team-form")).to_have_count(0)
    assert sorted(t["name"] for t in org.call("a-1", "GET", "teams").json()["items"]) == [
        "Databases",
        "Networking",
    ]

    # The policy: Networking (assign) for 60 s, then all seniors; once round again.
    policy = page.locator(".policy-form")
    policy.get_by_label("Level 1: wait (seconds)").fill("60")
    policy.get_by_label("Level 1: target").select_option("team")
    policy.get_by_label("Level 1: team").select_option(label="Networking")
    policy.get_by_label("Level 1: mode").select_option("assign")
    policy.get_by_role("button", name="+ Add a level").click()
    policy.get_by_label("Level 2: wait (seconds)").fill("300")
    policy.get_by_label("Level 2: target").select_option("all_seniors")
    expect(policy.get_by_label("Level 2: team")).to_be_hidden()
    policy.get_by_label("Repeat").fill("1")
    policy.get_by_role("button", name="Save policy").click()
    expect(page.locator("#policy-state")).to_contain_text("Applies to escalations created from now")
    stored = org.call("a-1", "GET", "escalation-policy").json()
    networking_id = stored["levels"][0]["team_id"]
    keys = ("after_seconds", "target", "team_name", "mode")
    levels = [tuple(level[key] for key in keys) for level in stored["levels"]]
    assert levels == [
        (60, "team", "Networking", "assign"),
        (300, "all_seniors", None, "broadcast"),
    ]
    assert stored["repeat"] == 1 and stored["is_default"] is False

    # A level naming a team deleted meanwhile (elsewhere): unknown_team, next to that level.
    databases_id = team_card(page, "Databases").get_attribute("data-id")
    policy.get_by_label("Level 2: target").select_option("team")
    policy.get_by_label("Level 2: team").select_option(label="Databases")
    assert org.call("a-1", "DELETE", f"teams/{databases_id}").status_code == 204
    problems.expect(422, "/api/v1/escalation-policy")
    policy.get_by_role("button", name="Save policy").click()
    expect(policy.get_by_label("Level 2: team")).to_have_attribute("aria-invalid", "true")
    expect(policy.locator(".level-row").nth(1)).to_contain_text("Level 2 names team")
    assert org.call("a-1", "GET", "escalation-policy").json() == stored  # nothing changed

    # A team the policy names cannot be deleted: team_in_use, next to its card.
    problems.expect(409, f"/api/v1/teams/{networking_id}")
    networking.get_by_role("button", name="Delete").click()
    networking.get_by_role("button", name="Confirm delete").click()
    expect(networking.locator(".field-error")).to_contain_text("named by the escalation policy")

    reload(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Routing")
    expect(policy.get_by_label("Level 1: team")).to_have_value(networking_id)
    expect(policy.get_by_label("Level 1: mode")).to_have_value("assign")
    expect(policy.get_by_label("Repeat")).to_have_value("1")
    expect(page.locator("#team-list .team-card")).to_have_count(1)
    expect(team_card(page, "Networking")).to_be_visible()
