"""The screenshots of the README and docs, taken from a realistic org on the real stack:
docs/screenshots/queue.png, queue-phone.png, handoff.png, handoff-phone.png,
escalate.png, analytics.png and routing.png.

The org has teams and an escalation policy. The seeded escalations start under
a policy whose first level lasts a second, so the worker's sweep moves the
waiting ones to level 2 (all seniors); the policy is then changed to a
15-minute first level, so the two that arrive while the queue is open stay at
level 1, assigned to the senior who is online.

Escalations made a second ago would show "0.1 s to claim", so after the real
API and worker have done their work the seed moves each handoff's timestamps
back (``created_at`` and its created / assessment-ready events; claims and
resolutions keep their real times), and two pending handoffs get a past claim
deadline so the worker's SLA sweep records real breaches.
"""

import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from shared.core.db import make_engine
from tests.browser.conftest import OpenConsole, Org, Problems, Stack, screenshot

pytestmark = pytest.mark.slow

WAIT_SECONDS = 30

#: (session, priority, domain, summary, tried steps, minutes waiting, minutes worked, fate)
SEED = [
    ("s-101", "high", "kubernetes", "checkout pods crash-loop with OOMKilled after the 2.14 deploy",
     ["Restarted the deployment", "Checked recent commits"], 3, 0, "pending"),
    ("s-102", "low", "ci", "integration tests time out in CI since the runner image update",
     ["Re-ran the pipeline"], 9, 0, "pending"),
    ("s-103", "normal", "auth", "SSO login loops back to the login page for all users",
     ["Cleared browser cookies", "Tried a private window"], 2, 12, "claimed"),
    ("s-090", "urgent", "database", "primary database CPU pinned at 100% after index migration",
     ["Killed the long-running queries"], 1, 45, "resolved"),
    ("s-091", "high", "kubernetes", "ingress returns 502 for a third of requests",
     ["Restarted the ingress controller"], 4, 70, "resolved"),
    ("s-092", "normal", "networking", "VPN users cannot reach the staging cluster",
     ["Re-issued the VPN profile"], 7, 30, "resolved"),
    ("s-093", "normal", "kubernetes", "cron jobs stopped running in the batch namespace",
     ["Checked the CronJob schedule"], 3, 25, "resolved"),
    ("s-094", "low", "ci", "docker layer cache misses on every build",
     ["Pinned the base image digest"], 16, 0, "pending"),
    ("s-095", "normal", "database", "replica lag grows during nightly ETL",
     ["Raised max_wal_senders"], 2, 90, "resolved"),
    ("s-096", "high", "auth", "API keys rejected after the secrets rotation",
     ["Re-deployed the gateway"], 3, 0, "cancelled"),
]  # fmt: skip
SLA_MINUTES = 5

NOTES = {
    "s-101": "Started right after the 2.14 rollout; memory climbs steadily until the kill.",
    "s-102": "Only the integration stage; unit tests pass on the same runner.",
    "s-103": "Affects every user since about 09:40; the IdP shows successful logins.",
    "s-090": "The migration added two indexes on orders; CPU pinned since it finished.",
    "s-091": "Only one of the three ingress pods logs upstream resets.",
    "s-092": "New VPN profiles connect but no route to 10.20.0.0/16.",
    "s-093": "Last successful run was Friday night; nothing shows in kubectl get jobs.",
    "s-094": "Cache hit rate went from 90% to 0 after the builder upgrade.",
    "s-095": "Lag goes from seconds to 40 minutes between 01:00 and 03:00.",
    "s-096": "Old keys were revoked as planned; new keys fail with 401 invalid_key.",
    "s-104": "Began at the morning traffic peak; pods log FATAL too many connections.",
    "s-105": "Partner says nothing changed on their side; curl shows the same error.",
}
RESOLUTIONS = {
    "s-090": "Dropped the duplicate index and ran ANALYZE on orders; CPU back to 20%.",
    "s-091": "One ingress pod had a stale upstream list; rolled it and pinned the config map.",
    "s-092": "The new VPN profile lacked the staging route; added 10.20.0.0/16 to the pushes.",
    "s-093": "The CronJob was suspended by the last Helm upgrade; unsuspended and fixed the chart.",
    "s-095": "Raised the ETL batch commit interval and moved it to the replica-safe window.",
}

LIVE = [
    ("s-104", "urgent", "database", "orders API returns 500: too many connections for role app",
     ["Restarted the API pods", "Checked the connection pool settings"]),
    ("s-105", "normal", "networking", "payment partner calls fail with CERTIFICATE_VERIFY_FAILED",
     ["Retried the calls", "Checked the partner status page"]),
]  # fmt: skip


TEAMS = [
    ("Networking", [("s-1", "Sam Senior"), ("s-2", "Dana Senior")], ["networking", "dns"]),
    ("Platform", [("s-2", "Dana Senior"), ("s-3", "Lee Senior")], ["kubernetes", "ci"]),
    ("Data", [("s-1", "Sam Senior"), ("s-3", "Lee Senior")], ["database"]),
]


def set_policy(org: Org, first_level_seconds: int) -> None:
    levels = [
        {"after_seconds": first_level_seconds, "target": "domain_team", "mode": "assign"},
        {"after_seconds": 1800, "target": "all_seniors", "mode": "broadcast"},
    ]
    response = org.call("a-1", "PUT", "escalation-policy", json={"levels": levels, "repeat": 1})
    assert response.status_code == 200, response.text


def make_teams(org: Org) -> None:
    for name, members, domains in TEAMS:
        body = {"name": name, "members": [{"id": i, "name": n} for i, n in members]}
        response = org.call("a-1", "POST", "teams", json={**body, "domains": domains})
        assert response.status_code == 201, response.text


def poll(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {WAIT_SECONDS} s")


def create(org: Org, session: str, priority: str, domain: str, summary: str, tried: list[str]):
    return org.create(
        "j-1",
        session,
        priority=priority,
        engineer_notes=NOTES[session],
        snapshot={
            "problem_summary": summary,
            "problem_domain": domain,
            "step_count": 3 + len(tried) * 2,
            "confidence_tier": "low" if priority in ("urgent", "high") else "medium",
            "tried_steps": [{"description": step, "outcome": "No change"} for step in tried],
        },
    )


def backdate(stack: Stack, handoff_id: str, *, wait: int, work: int) -> None:
    """Created ``wait + work`` minutes ago, claimed (if it was) ``work`` minutes ago,
    assessed 4 s after creation; the claim deadline follows the new creation time."""
    engine = make_engine(stack.database_url)
    params = {"id": handoff_id, "age": f"{wait + work} minutes", "work": f"{work} minutes",
              "sla": f"{SLA_MINUTES} minutes"}  # fmt: skip
    statements = [
        "UPDATE handoffs SET created_at = created_at - CAST(:age AS interval), "
        "claimed_at = claimed_at - CAST(:work AS interval), "
        "first_claimed_at = first_claimed_at - CAST(:work AS interval) WHERE id = :id",
        "UPDATE handoffs SET claim_deadline_at = created_at + CAST(:sla AS interval) "
        "WHERE id = :id",
        # Settled again from the moved times, as shared/handoffs.py would have.
        "UPDATE handoffs SET sla_settled_at = CASE "
        "WHEN first_claimed_at <= claim_deadline_at THEN first_claimed_at "
        "WHEN cancelled_at <= claim_deadline_at THEN cancelled_at END WHERE id = :id",
        "UPDATE events SET at = at - CAST(:age AS interval) WHERE handoff_id = :id "
        "AND type = 'handoff_created'",
        "UPDATE events SET at = at - CAST(:age AS interval) + interval '4 seconds' "
        "WHERE handoff_id = :id AND type = 'handoff_assessment_ready'",
        "UPDATE events SET at = at - CAST(:work AS interval) WHERE handoff_id = :id "
        "AND type = 'handoff_claimed'",
    ]
    try:
        with engine.begin() as db:
            for statement in statements:
                db.execute(text(statement), params)
    finally:
        engine.dispose()


def seed(stack: Stack, org: Org) -> None:
    make_teams(org)
    set_policy(org, first_level_seconds=1)
    breaching = []
    waiting = []
    for session, priority, domain, summary, tried, wait, work, fate in SEED:
        handoff = create(org, session, priority, domain, summary, tried)
        poll(lambda h=handoff: org.get("s-1", h["id"])["assessment_status"] == "ready", "AI")
        path = f"handoffs/{handoff['id']}"
        if fate in ("claimed", "resolved"):
            assert org.call("s-2", "POST", f"{path}/claim").status_code == 200
        if fate == "resolved":
            notes = {"resolution_notes": RESOLUTIONS[session]}
            assert org.call("s-2", "POST", f"{path}/resolve", json=notes).status_code == 200
        if fate == "cancelled":
            assert org.call("j-1", "POST", f"{path}/cancel").status_code == 200
        backdate(stack, handoff["id"], wait=wait, work=work)
        if wait > SLA_MINUTES:
            breaching.append(handoff["id"])
        if fate == "pending":
            waiting.append(handoff["id"])
    for handoff_id in breaching:  # recorded by the worker's SLA sweep
        poll(lambda i=handoff_id: org.get("s-1", i)["sla_breached_at"], "SLA breach")
    for handoff_id in waiting:  # moved by the worker's escalation sweep
        poll(lambda i=handoff_id: org.get("s-1", i)["escalation_level"] == 1, "level 2")
    set_policy(org, first_level_seconds=900)


def open_first_live(page: Page, summary: str) -> None:
    page.locator(".card-link", has_text=summary).click()
    expect(page.locator(".assessment")).to_have_attribute("data-state", "ready")


def test_screenshots_for_the_readme(
    stack: Stack, org: Org, console: OpenConsole, problems: Problems
) -> None:
    org.token("engineer", "j-1", "Jamie Junior")
    org.token("senior", "s-2", "Dana Senior")
    alex = org.token("admin", "a-1", "Alex Admin")
    sam = org.token("senior", "s-1", "Sam Senior")
    seed(stack, org)

    queue = console(sam, viewport=(1280, 820))
    phone = console(sam, viewport=(390, 844))
    live = [create(org, *spec) for spec in LIVE]
    for page in (queue, phone):
        for handoff in live:
            expect(page.locator(f'.card[data-id="{handoff["id"]}"] .unread-dot')).to_be_visible()
        expect(page.locator("#queue-list .card")).to_have_count(5)
        expect(page.locator("#queue-list .assignee")).to_have_count(len(LIVE))
        expect(page.locator("#online")).to_contain_text("Sam Senior (you)")
        page.mouse.move(0, 0)
    screenshot(queue, "queue.png")
    screenshot(phone, "queue-phone.png")

    queue.set_viewport_size({"width": 1280, "height": 1100})
    open_first_live(queue, LIVE[0][3])
    queue.get_by_role("button", name="Claim", exact=True).click()
    expect(queue.locator(".chips .chip").first).to_be_visible()
    queue.locator(".chips .chip").first.click()
    queue.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
    screenshot(queue, "handoff.png")

    open_first_live(phone, LIVE[1][3])
    phone.evaluate("() => window.scrollTo(0, 0)")
    screenshot(phone, "handoff-phone.png")

    admin = console(alex, viewport=(1280, 1000))
    admin.get_by_role("link", name="Routing").click()
    expect(admin.locator("#team-list .team-card")).to_have_count(len(TEAMS))
    expect(admin.get_by_label("Level 1: wait (seconds)")).to_have_value("900")
    screenshot(admin, "routing.png")

    admin.get_by_role("link", name="Analytics").click()
    expect(admin.locator("#stat-total .stat-value")).to_have_text(str(len(SEED) + len(LIVE)))
    expect(admin.locator("#stat-sla .stat-value")).to_have_text("3")
    expect(admin.locator("#chart-claim-by-domain svg")).to_be_visible()
    screenshot(admin, "analytics.png")

    junior = console(org.users["j-1"][2], viewport=(1280, 900), path="#/escalate")
    problems.expect(422, "/api/v1/handoffs")
    junior.get_by_label("Session ID").fill("s-106")
    junior.get_by_label("Domain").fill("storage")
    junior.get_by_label("Step 1", exact=True).fill("Grew the volume by 20 GiB")
    junior.get_by_label("Outcome of step 1").fill("Filled up again overnight")
    junior.get_by_role("button", name="Escalate to a senior").click()
    expect(junior.locator("#f-snapshot-problem_summary-error")).to_be_visible()
    junior.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
    screenshot(junior, "escalate.png")
