"""``escalations up --demo``: plays a small, realistic escalation flow against
the local API so a newcomer sees the queue move — juniors escalate, seniors
claim (sometimes racing), and resolve with notes. Bounded: it stops after
``ROUNDS`` escalations or when told to.

Before the rounds it opens one networking escalation that nobody claims
(``open_unclaimed``): under the demo's routing (``services.demo_routing``) it
starts with the Networking team and moves up to all seniors when its first level
runs out, which the banner tells the newcomer to watch.
"""

import itertools
import logging
import secrets
import threading
from datetime import datetime

import httpx

from services.demo_routing import DemoRouting, DemoRoutingError, seed_routing
from services.local import LocalStack, StartupError
from shared.auth.demo_users import demo_token, networking_senior_token
from shared.core.models import Role

log = logging.getLogger(__name__)

ROUNDS = 40
PAUSE_SECONDS = 4.0
#: Settings ``up --demo`` uses unless the environment sets them: the workers look
#: for due level moves every second, so the move shows on time.
DEMO_SETTINGS = {"ESCALATIONS_MAINTENANCE_INTERVAL_SECONDS": "1"}

SCENARIOS = [
    (
        "kubernetes",
        "high",
        "checkout pods crash-loop with OOMKilled after the 2.14 deploy",
        ["Restarted the deployment", "Checked recent commits"],
        "Raised the memory limit to 1Gi and fixed the unbounded cache in the new release.",
    ),
    (
        "database",
        "urgent",
        "orders API returns 500: FATAL too many connections for role app",
        ["Restarted the API pods"],
        "Put PgBouncer in front and lowered the pool size per pod from 50 to 10.",
    ),
    (
        "networking",
        "normal",
        "payment partner calls fail with CERTIFICATE_VERIFY_FAILED",
        ["Retried the calls", "Checked the partner status page"],
        "The partner rotated to a new CA; added its intermediate to our trust bundle.",
    ),
    (
        "auth",
        "normal",
        "SSO login loops back to the login page for all users",
        ["Cleared browser cookies"],
        "Clock skew on the IdP proxy; enabled NTP and the tokens validate again.",
    ),
    (
        "ci",
        "low",
        "integration tests time out in CI since the runner image update",
        ["Re-ran the pipeline"],
        "The new image lacked the docker socket; pinned the previous runner image.",
    ),
]


#: Open before the banner and never claimed by the demo's seniors: the newcomer signing in
#: as Sam Senior finds them waiting "for me" (no team owns their domains, so they go to all
#: seniors) instead of an empty queue while the first rounds play.
WAITING = [SCENARIOS[1][:4], SCENARIOS[0][:4], SCENARIOS[4][:4]]

UNCLAIMED = (
    "networking",
    "high",
    "VPN tunnel to the Frankfurt office drops every few minutes",
    ["Restarted the VPN gateway", "Checked the ISP status page"],
)


def start_demo(stack: LocalStack, *, level_seconds: int) -> tuple["DemoPlayer", list[str]]:
    """Seed the demo's routing, open the escalation nobody claims, and return the
    player (not started) with the banner's lines. Raises ``StartupError``."""
    secret = stack.env["ESCALATIONS_JWT_SECRET"]
    try:
        routing = seed_routing(
            database_url=stack.env["ESCALATIONS_DATABASE_URL"], level_seconds=level_seconds
        )
        player = DemoPlayer(url=stack.url, secret=secret)
        handoff = player.open_unclaimed()
        player.open_waiting()
    except (DemoRoutingError, httpx.HTTPError) as exc:
        raise StartupError(f"demo: {exc}") from exc
    senior = demo_token(Role.senior, secret=secret)
    return player, demo_notes(url=stack.url, routing=routing, handoff=handoff, senior_token=senior)


class DemoPlayer(threading.Thread):
    def __init__(self, *, url: str, secret: str) -> None:
        super().__init__(name="demo", daemon=True)
        self._client = httpx.Client(base_url=f"{url}/api/v1", timeout=10)
        self._junior = demo_token(Role.engineer, secret=secret)
        # Sam and the networking senior (not a sign-in user) race for claims.
        self._seniors = [
            demo_token(Role.senior, secret=secret),
            networking_senior_token(secret=secret),
        ]
        self._stopped = threading.Event()
        # Session ids of this run: one open handoff per session, and a second run on
        # the same database must not collide with the first run's open handoffs.
        self._run = secrets.token_hex(3)

    def open_unclaimed(self) -> dict:
        """Create the networking escalation nobody in the demo claims; returns the
        handoff. Raises ``httpx.HTTPError`` when the API refuses it."""
        return self._escalate("unclaimed", 0, UNCLAIMED)

    def open_waiting(self) -> None:
        """Create the ``WAITING`` escalations, left for the newcomer to claim.
        Raises ``httpx.HTTPError`` when the API refuses one."""
        for number, scenario in enumerate(WAITING):
            self._escalate(f"waiting-{number}", number, scenario)

    def _escalate(self, name: str, number: int, scenario: tuple) -> dict:
        domain, priority, summary, tried = scenario
        body = _body(f"demo-{self._run}-{name}", number, domain, priority, summary, tried)
        response = self._client.post(
            "/handoffs", json=body, headers={"Authorization": f"Bearer {self._junior}"}
        )
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        scenarios = itertools.cycle(SCENARIOS)
        for number in range(ROUNDS):
            if self._stopped.wait(PAUSE_SECONDS):
                return
            try:
                self._play(number, next(scenarios))
            except httpx.HTTPError as exc:
                log.warning("demo: %s", exc)

    def _play(self, number: int, scenario: tuple) -> None:
        domain, priority, summary, tried, fix = scenario
        body = _body(f"demo-{self._run}-{number}", number, domain, priority, summary, tried)
        handoff = self._post("/handoffs", self._junior, json=body)
        if handoff is None or number % 3 == 2 or self._stopped.wait(PAUSE_SECONDS):
            return  # leave some in the queue for the newcomer to claim
        claimed = [
            self._post(f"/handoffs/{handoff['id']}/claim", senior) for senior in self._seniors
        ]
        winner = next((s for s, c in zip(self._seniors, claimed, strict=True) if c), None)
        if winner is None or self._stopped.wait(PAUSE_SECONDS):
            return
        self._post(f"/handoffs/{handoff['id']}/resolve", winner, json={"resolution_notes": fix})

    def _post(self, path: str, token: str, **kwargs) -> dict | None:
        response = self._client.post(path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        return response.json() if response.is_success else None


def _body(
    session_id: str, number: int, domain: str, priority: str, summary: str, tried: list[str]
) -> dict:
    return {
        "session_id": session_id,
        "priority": priority,
        "engineer_notes": "Stuck after the obvious things; would love a second pair of eyes.",
        "snapshot": {
            "problem_summary": summary,
            "problem_domain": domain,
            "status": "stuck",
            "step_count": 3 + number % 5,
            "confidence_tier": ["low", "medium"][number % 2],
            "tried_steps": [{"description": step, "outcome": "No change"} for step in tried],
            "transcript": [{"role": "user", "content": summary}],
        },
    }


def demo_notes(*, url: str, routing: DemoRouting, handoff: dict, senior_token: str) -> list[str]:
    """The banner's lines on what the demo shows and how to watch it."""
    due = handoff.get("next_escalation_at")
    when = f"At {datetime.fromisoformat(due):%H:%M:%S} UTC" if due else "When its level runs out,"
    summary = handoff["snapshot"]["problem_summary"]
    return [
        "Demo: a junior escalates every few seconds; two seniors race to claim and resolve.",
        f"Routing (GET /api/v1/escalation-policy): first the team owning the problem's domain "
        f"({routing.team_name}: {routing.member_name}),",
        f"  then all seniors if nobody claims it within {routing.level_seconds} s.",
        f'Watch: "{summary}" went to the {routing.team_name} team, and nobody will claim it.',
        f"  {when} it moves up to all seniors (event handoff_escalated): live in the console",
        "  (sign in as Sam Senior) and in its history:",
        f"  curl -s {url}/api/v1/handoffs/{handoff['id']}/history "
        f"-H 'Authorization: Bearer {senior_token}'",
    ]
