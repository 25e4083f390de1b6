"""Claim storms over real HTTP: many seniors claim one handoff at the same moment.

Shared by ``tests/e2e/test_claim_race.py``, ``bench/claims.py`` and ``bench/api.py``.
Claimer ``i`` claims through replica ``i % replicas``, on a keep-alive connection
of its own, opened beforehand. Every claim waits on one start signal, so all of
them are in flight together.

The claims themselves are written and read on bare asyncio streams, as wrk would:
an httpx client spent about as much CPU per request as the replica answering it
(1–1.5 ms), on the same two cores, so a storm measured the load generator as much
as the service. ``Claimer.client`` (one httpx client per replica, shared) is for
everything around a storm: creating the handoff, reading its history.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from shared.auth.tokens import issue_token
from shared.core.models import Role
from testkit.samples import fresh_handoff_body

API = "/api/v1/handoffs"
REQUEST_TIMEOUT_SECONDS = 60.0
TOKEN_TTL = timedelta(hours=2)
CLAIM_FIELDS = ("claimed_by_id", "claimed_by_name", "claimed_at")


@dataclass(frozen=True)
class Senior:
    user_id: str
    name: str
    headers: dict[str, str]


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Claimer:
    """A senior, the connection it claims on, and its replica's shared client."""

    senior: Senior
    connection: Connection  # replaced when the replica closed it (``_refresh``)
    client: httpx.AsyncClient


@dataclass(frozen=True)
class ClaimAnswer:
    """One claim's response; times are seconds after the storm's start signal."""

    senior: Senior
    status: int
    body: dict[str, Any]
    sent_s: float
    answered_s: float

    @property
    def latency_s(self) -> float:
        return self.answered_s - self.sent_s


@dataclass(frozen=True)
class Storm:
    """All answers of one storm and the time from the start signal to the last one."""

    handoff_id: str
    answers: list[ClaimAnswer]
    elapsed_s: float

    def with_status(self, status: int) -> list[ClaimAnswer]:
        return [answer for answer in self.answers if answer.status == status]

    @property
    def sent_before_first_answer(self) -> int:
        """How many claims were on the wire before any claim was answered."""
        first_answer = min(answer.answered_s for answer in self.answers)
        return sum(answer.sent_s < first_answer for answer in self.answers)


# --- who claims --------------------------------------------------------------------


def bearer(*, secret: str, sub: str, name: str, role: Role, org: str) -> dict[str, str]:
    token = issue_token(secret=secret, sub=sub, name=name, role=role, org=org, ttl=TOKEN_TTL)
    return {"Authorization": f"Bearer {token}"}


def make_seniors(count: int, *, secret: str, org: str) -> list[Senior]:
    """``count`` distinct seniors of ``org``, each with a bearer token."""
    return [
        Senior(f"senior-{i}", f"Senior {i}", _senior_headers(i, secret=secret, org=org))
        for i in range(count)
    ]


def _senior_headers(index: int, *, secret: str, org: str) -> dict[str, str]:
    name = f"Senior {index}"
    return bearer(secret=secret, sub=f"senior-{index}", name=name, role=Role.senior, org=org)


def engineer_headers(*, secret: str, org: str) -> dict[str, str]:
    return bearer(secret=secret, sub="engineer-1", name="Engineer One", role=Role.engineer, org=org)


@asynccontextmanager
async def open_claimers(
    seniors: Sequence[Senior], base_urls: Sequence[str]
) -> AsyncIterator[list[Claimer]]:
    """One claimer per senior, spread round-robin over the replicas, each with
    its connection open; connections and clients (one per replica) closed on exit."""
    clients = [
        httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS) for url in base_urls
    ]
    claimers: list[Claimer] = []
    try:
        for index, senior in enumerate(seniors):
            client = clients[index % len(clients)]
            claimers.append(Claimer(senior, await _connect(client), client))
        yield claimers
    finally:
        writers = [claimer.connection[1] for claimer in claimers]
        for writer in writers:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for writer in writers), return_exceptions=True)
        await asyncio.gather(*(client.aclose() for client in clients))


async def _connect(client: httpx.AsyncClient) -> Connection:
    return await asyncio.open_connection(client.base_url.host, client.base_url.port)


# --- what they do ------------------------------------------------------------------


async def create_handoff(client: httpx.AsyncClient, *, headers: dict[str, str]) -> str:
    """Create a handoff for a fresh session; its id. Raises unless the answer is 201."""
    response = await client.post(API, json=fresh_handoff_body(), headers=headers)
    if response.status_code != 201:
        raise AssertionError(f"create answered {response.status_code}: {response.text}")
    handoff_id: str = response.json()["id"]
    return handoff_id


async def claim_storm(claimers: Sequence[Claimer], *, handoff_id: str) -> Storm:
    """Every claimer claims ``handoff_id`` at once; returns all answers.

    Transport errors propagate: a storm either answers every claim or fails.
    Every claimer's connection is used just before (untimed), and replaced if
    the replica had closed it: uvicorn closes a keep-alive connection idle for
    5 s, and a claim sent on one it is closing fails (a slow create leaves them idle).
    """
    await asyncio.gather(*(_refresh(claimer) for claimer in claimers))
    start = asyncio.Event()
    tasks = [asyncio.create_task(_claim(claimer, handoff_id, start)) for claimer in claimers]
    await asyncio.sleep(0)  # one loop turn: every task is now waiting on the signal
    began = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    answers = [
        ClaimAnswer(claimer.senior, status, _json(body), sent - began, answered - began)
        for claimer, (status, body, sent, answered) in zip(claimers, results, strict=True)
    ]
    return Storm(handoff_id, answers, max(answer.answered_s for answer in answers))


async def _refresh(claimer: Claimer) -> None:
    healthz = _request(claimer, "GET", "/healthz")
    try:
        status, body = await _exchange(claimer.connection, healthz)
    except (asyncio.IncompleteReadError, ConnectionError):  # closed by the replica: idle
        claimer.connection[1].close()
        claimer.connection = await _connect(claimer.client)
        status, body = await _exchange(claimer.connection, healthz)
    if status != 200:
        raise AssertionError(f"/healthz answered {status}: {body!r}")


async def _claim(
    claimer: Claimer, handoff_id: str, start: asyncio.Event
) -> tuple[int, bytes, float, float]:
    """The status and body answered, and when (``perf_counter``) the claim was
    sent and answered."""
    request = _request(claimer, "POST", f"{API}/{handoff_id}/claim", claimer.senior.headers)
    await start.wait()
    sent = time.perf_counter()
    status, body = await _exchange(claimer.connection, request)
    return status, body, sent, time.perf_counter()


def _request(
    claimer: Claimer, method: str, path: str, headers: dict[str, str] | None = None
) -> bytes:
    url = claimer.client.base_url
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.host}:{url.port}", "Content-Length: 0"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _exchange(connection: Connection, request: bytes) -> tuple[int, bytes]:
    """``request`` sent, and the status and body of its response (every answer
    of the API has a Content-Length)."""
    reader, writer = connection
    writer.write(request)
    async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines if line)
        }
        body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split(" ", 2)[1]), body


def _json(body: bytes) -> dict[str, Any]:
    """The JSON object answered, or ``{"text": ...}`` when the body is not one."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return {"text": body.decode(errors="replace")}
    return decoded if isinstance(decoded, dict) else {"json": decoded}


# --- the contract ------------------------------------------------------------------


def storm_problems(storm: Storm) -> list[str]:
    """Every way ``storm`` broke the claim contract; empty when exactly one claim
    won (200, the handoff claimed by its sender) and every other claim got 409
    ``handoff_already_claimed`` naming that same winner and claim time."""
    winners, losers = storm.with_status(200), storm.with_status(409)
    others = [answer for answer in storm.answers if answer.status not in (200, 409)]
    problems = [f"{len(winners)} claims won (200), want exactly 1"] if len(winners) != 1 else []
    if others:
        problems.append(f"{len(others)} other answers, e.g. {others[0].status} {others[0].body}")
    if len(winners) == 1:
        problems += _winner_problems(winners[0]) + _loser_problems(winners[0], losers)
    return problems


def _winner_problems(winner: ClaimAnswer) -> list[str]:
    expected = {
        "status": "claimed",
        "claimed_by_id": winner.senior.user_id,
        "claimed_by_name": winner.senior.name,
    }
    actual = {key: winner.body.get(key) for key in expected}
    return [] if actual == expected else [f"winner's 200 body {actual}, want {expected}"]


def _loser_problems(winner: ClaimAnswer, losers: list[ClaimAnswer]) -> list[str]:
    expected: dict[str, Any] = {key: winner.body.get(key) for key in CLAIM_FIELDS}
    expected["error"] = "handoff_already_claimed"
    expected["detail"] = f"Already claimed by {winner.senior.name}."
    wrong = [
        answer.body
        for answer in losers
        if {key: answer.body.get(key) for key in expected} != expected
    ]
    if not wrong:
        return []
    return [f"{len(wrong)} of {len(losers)} 409s disagree with {expected}, e.g. {wrong[0]}"]
