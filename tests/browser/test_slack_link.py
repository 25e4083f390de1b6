"""The Slack link page in a real browser (issue 21): a Slack user who clicked
Claim unlinked got a link with a one-time code; signed in to the console, they
confirm on ``#/slack/link?code=…`` (opened before signing in, it follows the
sign-in) and are linked; the used code is refused
with a clear message."""

import pytest
from playwright.sync_api import expect

from shared.core.redis_client import make_redis
from shared.slack.service import new_link_code
from testkit.procs import redis_url
from tests.browser.conftest import OpenConsole, Org, Problems, Stack, sign_in

pytestmark = pytest.mark.slow


def test_a_senior_links_their_slack_account(
    stack: Stack, org: Org, console: OpenConsole, problems: Problems
) -> None:
    client = make_redis(redis_url(stack.redis.port))
    try:
        code = new_link_code(redis=client, org_id=org.id, slack_user_id="U0DANA")
    finally:
        client.close()
    # The link from Slack opened before signing in: the page follows the sign-in.
    page = console(None, path=f"#/slack/link?code={code}")
    sign_in(page, org.token("senior", "dana", "Dana Senior"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Link your Slack account")
    page.get_by_role("button", name="Link my Slack account to Dana Senior").click()
    expect(page.locator("#slack-link-status")).to_contain_text("Linked.")
    org.token("admin", "admin", "Ada Admin")
    links = org.call("admin", "GET", "integrations/slack/links").json()["items"]
    assert [(link["slack_user_id"], link["user_id"]) for link in links] == [("U0DANA", "dana")]

    problems.expect(404, "/api/v1/integrations/slack/links")
    page.goto(f"{stack.url}#/queue")
    page.goto(f"{stack.url}#/slack/link?code={code}")
    page.get_by_role("button", name="Link my Slack account to Dana Senior").click()
    expect(page.locator("#slack-link-status")).to_contain_text("used or expired")
