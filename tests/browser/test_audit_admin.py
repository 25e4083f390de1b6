"""The admin's audit page in a real browser: a team created and an API key
revoked through the API show as changes naming who made them, newest first,
the kind filter narrows them, before/after opens, and no key is on the page."""

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import OpenConsole, Org, Stack

pytestmark = pytest.mark.slow


def test_admin_reads_the_changes_of_the_org(stack: Stack, org: Org, console: OpenConsole) -> None:
    admin = org.token("admin", "a-1", "Ada Admin")
    headers = {"Authorization": f"Bearer {admin}"}
    team = {"name": "Databases", "members": [], "domains": ["db"]}
    assert httpx.post(f"{stack.url}api/v1/teams", json=team, headers=headers).status_code == 201
    key = httpx.post(
        f"{stack.url}api/v1/api-keys", json={"name": "ci", "role": "engineer"}, headers=headers
    ).json()
    revoked = httpx.delete(f"{stack.url}api/v1/api-keys/{key['id']}", headers=headers)
    assert revoked.status_code == 204

    page = console(admin)
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit")
    entries = page.locator("#audit-list .audit-entry")
    expect(entries).to_have_count(3)
    expect(entries.first).to_contain_text("api_key.revoked")
    expect(entries.first).to_contain_text("Ada Admin")
    assert key["key"] not in page.content()

    page.get_by_label("Kind").select_option("team.created")
    expect(entries).to_have_count(1)
    entries.first.get_by_text("Before and after").click()
    expect(entries.first.locator("pre").last).to_contain_text("Databases")
