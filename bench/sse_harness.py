"""What ``bench/fanout.py`` and ``bench/stream_memory.py`` share: tokens, the
open-stream gauge, and a fleet of load generator processes (``bench/sse_clients.py``)
driven over their stdin/stdout.

Every wait polls a condition until a deadline; every process started here
leads its own process group and is killed with it on exit.
"""

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from shared.auth.tokens import issue_token
from shared.core.models import Role

BENCH = Path(__file__).resolve().parent
TOKEN_TTL = timedelta(hours=2)
COMMAND_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.1
GAUGE = "escalations_sse_open_streams"


# --- the replica ---------------------------------------------------------------------


def bearer_token(*, secret: str, org: str, role: Role, sub: str) -> str:
    name = f"Bench {sub}"
    return issue_token(secret=secret, sub=sub, name=name, role=role, org=org, ttl=TOKEN_TTL)


def open_streams(base_url: str) -> float:
    """The replica's ``escalations_sse_open_streams`` gauge (GET /metrics)."""
    response = httpx.get(f"{base_url}/metrics", timeout=5.0)
    response.raise_for_status()
    for line in response.text.splitlines():
        if line.startswith(GAUGE + " "):
            return float(line.split()[1])
    raise RuntimeError(f"{GAUGE} missing from /metrics")


# --- load generators ---------------------------------------------------------------


@dataclass
class Generator:
    """One ``sse_clients.py`` process and its control pipe."""

    process: asyncio.subprocess.Process
    count: int

    async def command(self, line: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()
        answer = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not answer:
            raise RuntimeError(f"load generator {self.process.pid} exited ({line.split()[0]})")
        return json.loads(answer)

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)


class Fleet:
    """Clients split over several generator processes, commanded together."""

    def __init__(self, generators: list[Generator]) -> None:
        self.generators = generators
        self.count = sum(generator.count for generator in generators)

    async def command(self, line: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> list[Any]:
        return list(await asyncio.gather(*(g.command(line, timeout) for g in self.generators)))

    async def totals(self) -> dict[str, Any]:
        statuses = await self.command("status")
        totals = {key: sum(s[key] for s in statuses) for key in statuses[0] if key != "errors"}
        totals["errors"] = [error for s in statuses for error in s["errors"]]
        return totals

    async def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Until every client got its ``ready`` message. Raises if any failed,
        or on the deadline."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            totals = await self.totals()
            if totals["failed"]:
                raise RuntimeError(f"{totals['failed']} clients failed: {totals['errors']}")
            if totals["ready"] >= self.count:
                return totals
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"only {totals['ready']}/{self.count} clients ready")
            await asyncio.sleep(POLL_SECONDS)

    async def wait_received(
        self, expected: int, timeout: float, *, poll: float = POLL_SECONDS
    ) -> dict[str, Any]:
        """Until ``expected`` messages arrived in all, or the deadline (then the
        caller counts what is lost)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            totals = await self.totals()
            if totals["received"] >= expected or asyncio.get_running_loop().time() > deadline:
                return totals
            await asyncio.sleep(poll)


@asynccontextmanager
async def fleet(
    *,
    targets: Sequence[str],
    count: int,
    processes: int,
    path: str,
    token: str | None,
    connect_concurrency: int,
    uvloop: bool = True,
) -> AsyncIterator[Fleet]:
    """``count`` clients over ``processes`` generators (client ``i`` to target
    ``i % len(targets)``); every generator killed on exit."""
    generators: list[Generator] = []
    try:
        first = 0
        for index in range(processes):
            share = count // processes + (1 if index < count % processes else 0)
            argv = [
                sys.executable, str(BENCH / "sse_clients.py"),
                "--targets", ",".join(targets),
                "--count", str(share),
                "--first-index", str(first),
                "--path", path,
                "--connect-concurrency", str(max(1, connect_concurrency // processes)),
            ]  # fmt: skip
            argv += ["--token", token] if token else []
            argv += [] if uvloop else ["--no-uvloop"]
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=1 << 26,
            )
            generators.append(Generator(process, share))
            first += share
        yield Fleet(generators)
    finally:
        for generator in generators:
            generator.kill()
        for generator in generators:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(generator.process.wait(), 10)
