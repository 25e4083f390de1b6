"""The soak's simulated users: engineers, seniors and admins of several orgs,
each a loop of a few requests per second, bounded in count and time.

Every request is recorded as an :class:`Answer` (status, or the transport
error). The soak knows each handoff it was told about (``Tracked``): state
changes on one handoff are serialised by a per-handoff lock, so the soak's view
of its status is exact and every claim is a race between seniors only (all
claims are storms of 2 to 5 seniors over both replicas at once). A request
whose outcome is unknown (a transport error) marks its handoff ``uncertain``.
"""

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from shared.auth.tokens import issue_token
from shared.core.models import Role
from testkit.samples import fresh_handoff_body

API = "/api/v1"
REQUEST_TIMEOUT_SECONDS = 30.0
#: Below uvicorn's keep-alive timeout (5 s): a pooled connection is never reused just
#: as the server closes it (a request lost in that race is the client's doing).
KEEPALIVE_EXPIRY_SECONDS = 3.0
STATE_CHANGES = ("handoff_claimed", "handoff_released", "handoff_resolved", "handoff_cancelled")
#: Handoffs are of these domains; an org's team owns the first.
DOMAINS = ("kubernetes", "networking")
#: The policy of every org but the last: the domain's team (all seniors for the
#: other domain), then all seniors in assign mode (one present senior or admin is
#: picked), 2 s and 3 s, looped once. Each run of levels lasts 7 s, so during the
#: soak some handoffs move (and are assigned) while others are claimed.
POLICY = {
    "levels": [
        {"after_seconds": 2, "target": "domain_team"},
        {"after_seconds": 3, "target": "all_seniors", "mode": "assign"},
    ],
    "repeat": 1,
}


@dataclass(frozen=True)
class User:
    id: str
    name: str
    role: Role
    org: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Answer:
    """One request; times are ``time.monotonic()``; ``status`` is None on a
    transport error (then ``error`` says which)."""

    action: str
    replica: int
    sent: float
    answered: float
    status: int | None
    error: str | None
    body: Any


@dataclass
class Tracked:
    """A handoff the soak created, as far as its accepted answers tell."""

    id: str
    org: str
    creator: User
    status: str = "pending"
    claimed_by: User | None = None
    assessment: str = "pending"
    uncertain: bool = False
    #: Accepted (200) state changes, in order: (event type, actor id).
    accepted: list[tuple[str, str]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class ClaimRace:
    handoff_id: str
    seniors: list[User]
    answers: list[Answer]


@dataclass
class Org:
    name: str
    engineers: list[User]
    seniors: list[User]
    admins: list[User]
    handoffs: dict[str, Tracked] = field(default_factory=dict)
    #: Whether ``set_policies`` gave it ``POLICY`` (else it keeps the default: no moves).
    has_policy: bool = False

    @property
    def users(self) -> list[User]:
        return [*self.engineers, *self.seniors, *self.admins]

    def with_status(self, status: str) -> list[Tracked]:
        return [h for h in self.handoffs.values() if h.status == status and not h.lock.locked()]


def make_orgs(count: int, *, secret: str, ttl: timedelta) -> list[Org]:
    """``count`` orgs of 3 engineers, 5 seniors and 1 admin, with bearer tokens."""

    def user(org: str, role: Role, index: int) -> User:
        sub = f"{org}-{role.value}-{index}"
        name = f"{role.value.title()} {index} of {org}"
        token = issue_token(secret=secret, sub=sub, name=name, role=role, org=org, ttl=ttl)
        return User(sub, name, role, org, token)

    orgs = []
    for number in range(1, count + 1):
        org = f"soak-org-{number}"
        orgs.append(
            Org(
                org,
                engineers=[user(org, Role.engineer, i) for i in range(3)],
                seniors=[user(org, Role.senior, i) for i in range(5)],
                admins=[user(org, Role.admin, 0)],
            )
        )
    return orgs


async def set_policies(orgs: list[Org], *, url: str) -> None:
    """Every org but the last (all of them when there is one) gets a team of two
    seniors owning ``DOMAINS[0]`` and ``POLICY``, set by its admin. Raises
    ``httpx.HTTPStatusError`` when the API refuses."""
    async with httpx.AsyncClient(base_url=url + API, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        for org in orgs[: max(1, len(orgs) - 1)]:
            admin = org.admins[0].headers
            team = {
                "name": "Platform",
                "members": [{"id": s.id, "name": s.name} for s in org.seniors[:2]],
                "domains": [DOMAINS[0]],
            }
            (await client.post("/teams", json=team, headers=admin)).raise_for_status()
            (await client.put("/escalation-policy", json=POLICY, headers=admin)).raise_for_status()
            org.has_policy = True


class Load:
    """The request loops and everything they recorded."""

    def __init__(
        self, orgs: list[Org], *, urls: Sequence[str], seconds: float, rng: random.Random
    ) -> None:
        self.orgs = orgs
        self.rng = rng
        self.deadline = time.monotonic() + seconds
        self.max_actions = int(seconds * 5)  # per loop: a bound on count as well as time
        self.answers: list[Answer] = []
        self.races: list[ClaimRace] = []
        self.unacknowledged_sessions: set[str] = set()  # creates whose outcome is unknown
        self.idempotent_mismatches: list[str] = []
        self.idempotent_replays = 0
        limits = httpx.Limits(
            max_connections=64,
            max_keepalive_connections=32,
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
        )
        self.clients = [
            httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits)
            for url in urls
        ]

    async def run(self) -> None:
        loops = []
        for org in self.orgs:
            loops += [self._loop(self._engineer, org, user, (0.8, 2.5)) for user in org.engineers]
            loops += [self._loop(self._senior, org, user, (1.0, 3.0)) for user in org.seniors]
            loops += [self._loop(self._admin, org, user, (2.0, 5.0)) for user in org.admins]
            loops.append(self._loop(self._race, org, org.seniors[0], (0.6, 2.0)))
        try:
            await asyncio.gather(*loops)
        finally:
            await asyncio.gather(*(client.aclose() for client in self.clients))

    async def _loop(self, action, org: Org, user: User, pause: tuple[float, float]) -> None:  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.rng.uniform(0, pause[1]))  # spread the first requests
        for _ in range(self.max_actions):
            if time.monotonic() >= self.deadline:
                return
            await action(org, user)
            await asyncio.sleep(self.rng.uniform(*pause))

    # --- requests ----------------------------------------------------------------

    async def request(
        self, action: str, user: User, method: str, path: str, **kwargs: Any
    ) -> Answer:
        replica = self.rng.randrange(len(self.clients))
        return await self.request_on(replica, action, user, method, path, **kwargs)

    async def request_on(
        self, replica: int, action: str, user: User, method: str, path: str, **kwargs: Any
    ) -> Answer:
        headers = {**user.headers, **kwargs.pop("headers", {})}
        sent = time.monotonic()
        try:
            response = await self.clients[replica].request(
                method, API + path, headers=headers, **kwargs
            )
        except httpx.HTTPError as exc:
            answer = Answer(action, replica, sent, time.monotonic(), None, repr(exc), None)
        else:
            answer = Answer(
                action, replica, sent, time.monotonic(), response.status_code, None, _json(response)
            )
        self.answers.append(answer)
        return answer

    # --- engineers ---------------------------------------------------------------

    async def _engineer(self, org: Org, user: User) -> None:
        roll = self.rng.random()
        if roll < 0.6:
            await self._create(org, user)
        elif roll < 0.75:
            own = [h for h in org.with_status("pending") if h.creator == user]
            if own:
                await self._change(org, user, self.rng.choice(own), "cancel", "handoff_cancelled")
        else:
            await self._read(org, user)

    async def _create(self, org: Org, user: User) -> None:
        body = fresh_handoff_body(f"soak-{uuid.uuid4().hex[:16]}")
        body["priority"] = self.rng.choice(["low", "normal", "high", "urgent"])
        body["snapshot"]["problem_domain"] = self.rng.choice(DOMAINS)  # type: ignore[index]
        key = uuid.uuid4().hex if self.rng.random() < 0.3 else None
        headers = {"Idempotency-Key": key} if key else {}
        replica = self.rng.randrange(len(self.clients))
        answer = await self.request_on(
            replica, "create", user, "POST", "/handoffs", json=body, headers=headers
        )
        if answer.status is None:
            self.unacknowledged_sessions.add(str(body["session_id"]))
        if answer.status != 201:
            return
        handoff_id = answer.body["id"]
        org.handoffs[handoff_id] = Tracked(handoff_id, org.name, user)
        if key:  # the client retries (to the other replica): the same handoff comes back
            again = await self.request_on(
                1 - replica, "create-replay", user, "POST", "/handoffs", json=body, headers=headers
            )
            if again.status is not None and again.status < 500:
                self.idempotent_replays += 1
                if again.status != 201 or again.body.get("id") != handoff_id:
                    self.idempotent_mismatches.append(
                        f"{handoff_id}: replay answered {again.status} {again.body}"
                    )

    async def _read(self, org: Org, user: User) -> None:
        answer = await self.request("list", user, "GET", "/handoffs", params={"limit": 50})
        if answer.status == 200:
            for item in answer.body.get("items", []):
                tracked = org.handoffs.get(item["id"])
                if tracked is not None:
                    tracked.assessment = item["assessment_status"]

    # --- state changes -------------------------------------------------------------

    async def _change(
        self,
        org: Org,
        user: User,
        handoff: Tracked,
        verb: str,
        event: str,
        json: dict[str, Any] | None = None,
    ) -> None:
        """One state change under the handoff's lock, if it is still as chosen."""
        expected = handoff.status
        async with handoff.lock:
            if handoff.status != expected or handoff.uncertain:
                return
            answer = await self.request(
                verb, user, "POST", f"/handoffs/{handoff.id}/{verb}", json=json
            )
            if answer.status is None:
                handoff.uncertain = True
            elif answer.status == 200:
                handoff.accepted.append((event, user.id))
                handoff.status = answer.body["status"]
                handoff.claimed_by = None

    async def _senior(self, org: Org, user: User) -> None:
        mine = [h for h in org.with_status("claimed") if h.claimed_by == user]
        roll = self.rng.random()
        if mine and roll < 0.5:
            notes = {"resolution_notes": "Raised the memory limit; pods are stable."}
            await self._change(org, user, mine[0], "resolve", "handoff_resolved", notes)
        elif mine and roll < 0.8:
            await self._change(org, user, mine[0], "release", "handoff_released")
        elif roll < 0.9:
            await self._retry(org, user)
        else:
            await self._read(org, user)

    async def _admin(self, org: Org, user: User) -> None:
        roll = self.rng.random()
        pending = org.with_status("pending")
        if roll < 0.3 and pending:
            await self._change(org, user, self.rng.choice(pending), "cancel", "handoff_cancelled")
        elif roll < 0.6:
            await self._retry(org, user)
        else:
            await self.request("analytics", user, "GET", "/analytics/escalations")

    async def _retry(self, org: Org, user: User) -> None:
        """Retry a failed assessment, else (to see the 409) any handoff's."""
        failed = [h for h in org.handoffs.values() if h.assessment == "failed"]
        pool = failed or list(org.handoffs.values())
        if not pool:
            return
        handoff = self.rng.choice(pool)
        answer = await self.request(
            "retry", user, "POST", f"/handoffs/{handoff.id}/assessment/retry"
        )
        if answer.status == 202:
            handoff.assessment = "pending"

    # --- claim races ------------------------------------------------------------------

    async def _race(self, org: Org, _user: User) -> None:
        """2 to 5 seniors claim one pending handoff at the same moment, senior
        ``i`` through replica ``i % 2`` (shifted at random)."""
        pending = org.with_status("pending")
        if not pending:
            return
        handoff = self.rng.choice(pending)
        async with handoff.lock:
            if handoff.status != "pending" or handoff.uncertain:
                return
            seniors = self.rng.sample(org.seniors, self.rng.randint(2, len(org.seniors)))
            shift = self.rng.randrange(len(self.clients))
            answers = await asyncio.gather(
                *(
                    self.request_on(
                        (i + shift) % len(self.clients),
                        "claim",
                        senior,
                        "POST",
                        f"/handoffs/{handoff.id}/claim",
                    )
                    for i, senior in enumerate(seniors)
                )
            )
            self.races.append(ClaimRace(handoff.id, seniors, list(answers)))
            winners = [s for s, a in zip(seniors, answers, strict=True) if a.status == 200]
            if any(answer.status is None for answer in answers):
                handoff.uncertain = True
            if len(winners) == 1:
                handoff.status, handoff.claimed_by = "claimed", winners[0]
                handoff.accepted.append(("handoff_claimed", winners[0].id))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"text": response.text[:500]}
