"""The soak's webhooks: every org of the load subscribes a receiver that answers
at once to ``handoff_created``, and a noisy org outside the load subscribes
``NOISY_WEBHOOKS`` webhooks (every event type) to a receiver that never answers
and one to a receiver that fails every try, then creates ``NOISY_HANDOFFS``
handoffs spread over the run. All receivers run in the soak's process on
127.0.0.1.

The invariant (:meth:`Webhooks.check`): every ``handoff_created`` event of the
load's orgs reached its receiver, and each one whose create-to-arrival span
overlaps no fault window arrived within ``LATENCY_BOUND_SECONDS``, whatever the
noisy org's receivers do. A span that overlaps a fault (a worker killed with
the try in its pool waits out its lease; Redis down holds every delivery) is
counted, not bounded.
"""

import asyncio
import json
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import psycopg

from bench.common import percentile
from bench.soak_checks import RECOVERY_GRACE_SECONDS, Check
from bench.soak_cluster import Window
from bench.soak_users import Org
from shared.auth.tokens import issue_token
from shared.core.models import Role
from testkit.pg import libpq_dsn
from testkit.samples import handoff_body
from testkit.webhook_receiver import HANG, Receiver

NOISY_ORG = "soak-noisy"
NOISY_WEBHOOKS = 20
NOISY_HANDOFFS = 50
#: Each org's limit must leave room for the noisy org's subscriptions.
MAX_WEBHOOKS_PER_ORG = NOISY_WEBHOOKS + 5
LATENCY_BOUND_SECONDS = 5.0
MAX_EXAMPLES = 3


class Webhooks:
    """Its receivers listen from construction until :meth:`close`."""

    def __init__(self, orgs: Sequence[Org], *, secret: str, ttl: timedelta) -> None:
        self.orgs = list(orgs)
        self.quick = Receiver().__enter__()
        self.hanging = Receiver([HANG]).__enter__()
        self.failing = Receiver([500]).__enter__()
        #: Add to a ``time.monotonic()`` reading to get Unix time (the events' ``at``).
        self.wall_offset = time.time() - time.monotonic()
        self.noisy_created = 0
        self.noisy_refused: list[str] = []

        def token(role: Role, sub: str) -> str:
            return issue_token(secret=secret, sub=sub, name=sub, role=role, org=NOISY_ORG, ttl=ttl)

        self.noisy_admin = token(Role.admin, f"{NOISY_ORG}-admin")
        self.noisy_engineers = [token(Role.engineer, f"{NOISY_ORG}-eng-{n}") for n in range(5)]

    def close(self) -> None:
        for receiver in (self.quick, self.hanging, self.failing):
            receiver.stop()

    async def subscribe(self, url: str) -> None:
        async with httpx.AsyncClient(base_url=f"{url}/api/v1", timeout=30.0) as http:
            for org in self.orgs:
                await _subscribe(http, org.admins[0].token, self.quick.url(f"/{org.name}"),
                                 ["handoff_created"])  # fmt: skip
            for n in range(NOISY_WEBHOOKS):
                await _subscribe(http, self.noisy_admin, self.hanging.url(f"/never-{n}"))
            await _subscribe(http, self.noisy_admin, self.failing.url("/fails"))

    async def run(self, *, urls: Sequence[str], seconds: float) -> None:
        """The noisy org's handoffs, one every ``seconds / NOISY_HANDOFFS``,
        alternating replicas; a refusal or no answer (a fault) is noted, not retried."""
        spacing = seconds / NOISY_HANDOFFS
        async with httpx.AsyncClient(timeout=30.0) as http:
            for number in range(NOISY_HANDOFFS):
                token = self.noisy_engineers[number % len(self.noisy_engineers)]
                try:
                    response = await http.post(
                        f"{urls[number % len(urls)]}/api/v1/handoffs",
                        json=handoff_body(f"{NOISY_ORG}-{number}"),
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    if response.status_code == 201:
                        self.noisy_created += 1
                    else:
                        self.noisy_refused.append(str(response.status_code))
                except httpx.HTTPError as exc:
                    self.noisy_refused.append(type(exc).__name__)
                await asyncio.sleep(spacing)

    def arrivals(self) -> dict[str, float]:
        """Handoff id → when its first ``handoff_created`` delivery arrived (monotonic)."""
        first: dict[str, float] = {}
        for request in self.quick.hook_requests():
            body = json.loads(request.body)
            if body.get("type") == "handoff_created":
                first.setdefault(str(body["handoff_id"]), request.at)
        return first

    def all_arrived(self, database_url: str) -> bool:
        arrived = self.arrivals()
        return all(handoff_id in arrived for handoff_id, _ in self._created(database_url))

    def check(self, database_url: str, windows: Sequence[Window]) -> Check:
        arrived = self.arrivals()
        now = time.monotonic()
        missing, late, bounded, overlapped = [], [], [], 0
        for handoff_id, at in self._created(database_url):
            created = at - self.wall_offset
            arrival = arrived.get(handoff_id)
            if arrival is None:
                missing.append(f"{handoff_id}: its handoff_created never reached the receiver")
                continue
            if _overlaps(created, arrival, windows, now):
                overlapped += 1
                continue
            bounded.append(arrival - created)
            if arrival - created > LATENCY_BOUND_SECONDS:
                late.append(f"{handoff_id}: delivered {arrival - created:.1f} s after its create")
        figures = (
            f"{len(bounded) + overlapped + len(missing)} creates of the load's orgs, "
            f"{len(bounded)} clear of faults: create→delivered p50 {_ms(bounded, 50)}, "
            f"p99 {_ms(bounded, 99)}, bound {LATENCY_BOUND_SECONDS:g} s; {overlapped} overlapping "
            f"a fault; noisy org: {self.noisy_created} handoffs ({len(self.noisy_refused)} "
            f"refused or unanswered), {len(self.hanging.hook_requests())} tries at its "
            f"never-answering receiver, {len(self.failing.hook_requests())} at its failing one"
        )
        problems = missing[:MAX_EXAMPLES] + late[:MAX_EXAMPLES]
        if len(missing) + len(late) > len(problems):
            problems.append(f"… {len(missing)} missing and {len(late)} late in all")
        return Check(
            "other orgs' webhook deliveries on time beside a noisy tenant",
            not missing and not late,
            figures,
            problems,
        )

    def _created(self, database_url: str) -> list[tuple[str, float]]:
        """(handoff id, Unix time) of every ``handoff_created`` of the load's orgs."""
        with psycopg.connect(libpq_dsn(database_url)) as connection:
            rows = connection.execute(
                "SELECT handoff_id, extract(epoch FROM at) FROM events"
                " WHERE type = 'handoff_created' AND org_id = ANY(%s)",
                ([org.name for org in self.orgs],),
            ).fetchall()
        return [(str(handoff_id), float(at)) for handoff_id, at in rows]


async def _subscribe(
    http: httpx.AsyncClient, token: str, url: str, events: list[str] | None = None
) -> None:
    body: dict[str, Any] = {"url": url, **({"events": events} if events else {})}
    response = await http.post("/webhooks", json=body, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()


def _overlaps(start: float, end: float, windows: Sequence[Window], now: float) -> bool:
    return any(
        window.start <= end and start <= (window.end or now) + RECOVERY_GRACE_SECONDS
        for window in windows
    )


def _ms(values: list[float], pct: float) -> str:
    if not values:
        return "—"
    return f"{percentile(values, pct) * 1000:.0f} ms"
