"""``escalations up --demo``: plays a small, realistic escalation flow against
the local API so a newcomer sees the queue move — juniors escalate, seniors
claim (sometimes racing), and resolve with notes. Bounded: it stops after
``ROUNDS`` escalations or when told to."""

import itertools
import logging
import threading

import httpx

from shared.auth import issue_token
from shared.demo_users import DEMO_ORG, DEMO_TOKEN_TTL, demo_token
from shared.models import Role

log = logging.getLogger(__name__)

ROUNDS = 40
PAUSE_SECONDS = 4.0

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


class DemoPlayer(threading.Thread):
    def __init__(self, *, url: str, secret: str) -> None:
        super().__init__(name="demo", daemon=True)
        self._client = httpx.Client(base_url=f"{url}/api/v1", timeout=10)
        self._junior = demo_token(Role.engineer, secret=secret)
        # A second senior (not a sign-in user) so claims race.
        rival = issue_token(secret=secret, sub="demo-senior-2", name="Riley Senior",
                            role=Role.senior, org=DEMO_ORG, ttl=DEMO_TOKEN_TTL)  # fmt: skip
        self._seniors = [demo_token(Role.senior, secret=secret), rival]
        self._stopped = threading.Event()

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
        handoff = self._post("/handoffs", self._junior, json=_body(number, domain, priority,
                                                                    summary, tried))  # fmt: skip
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


def _body(number: int, domain: str, priority: str, summary: str, tried: list[str]) -> dict:
    return {
        "session_id": f"demo-session-{number}",
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
