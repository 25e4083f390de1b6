"""Does a replica give back what its SSE streams took? Open-stream gauge and RSS
before, with and after a wave of clients, for several waves in a row.

    python -m bench.stream_memory [--clients 500] [--rounds 2] [--generators 1]
                                  [--connect-concurrency 64]
                                  [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Run it from the repository root with the project's virtualenv. It starts its own
in-memory redis-server on a free port, a fresh PostgreSQL database (created,
migrated with ``shared.core.migrate.upgrade_to_head`` and dropped by this script) and
one ``escalations api`` replica on 127.0.0.1. Each round opens ``--clients`` SSE
streams (``bench/sse_clients.py``, raw asyncio protocols) and waits until every
client has its ``ready`` message; then closes them all and waits (deadline
30 s) until the replica's ``escalations_sse_open_streams`` gauge (GET /metrics)
is back at its value before the round. RSS is ``VmRSS`` from /proc/PID/status.

Prints one row per round: the gauge before/with/after, RSS before/with/after in
KiB, the growth per stream while open, what stayed after the close (per stream
of that round), and how long the gauge took to return. If RSS stays up after
round 1 but round 2 does not raise it again, the memory is reused, not leaked
(CPython and glibc keep freed arenas). Exits 1 if the gauge did not return to
its baseline in time. Every process and the database are removed at the end,
also on errors, Ctrl-C or SIGTERM.
"""

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.common import DEFAULT_PG_ADMIN_URL, install_sigterm_handler
from bench.sse_harness import bearer_token, fleet, open_streams
from shared.core.models import Role
from testkit.pg import fresh_database
from testkit.procs import (
    Proc,
    api_env,
    base_url,
    free_port,
    redis_url,
    rss_kib,
    running,
    start_api,
    start_redis,
)

CLOSE_DEADLINE_SECONDS = 30.0
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Round:
    gauge: tuple[float, float, float]  # before, with clients, after
    rss_kib: tuple[int, int, int]
    clients: int
    drained_s: float | None  # None: the gauge never returned

    @property
    def growth_per_stream(self) -> float:
        return (self.rss_kib[1] - self.rss_kib[0]) / self.clients

    @property
    def kept_per_stream(self) -> float:
        return (self.rss_kib[2] - self.rss_kib[0]) / self.clients


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stream-mem-")))
        redis = stack.enter_context(running(start_redis(free_port(), log_dir=log_dir)))
        database_url = stack.enter_context(fresh_database(args.pg_admin_url))
        secret = secrets.token_urlsafe(32)
        env = api_env(database_url=database_url, redis_url=redis_url(redis.port), jwt_secret=secret)
        api = stack.enter_context(running(start_api(free_port(), env=env, log_dir=log_dir)))
        token = bearer_token(secret=secret, org="bench-memory", role=Role.senior, sub="viewer")
        rounds = [asyncio.run(one_round(api, token, args)) for _ in range(args.rounds)]
    print_rounds(rounds)
    return 0 if all(r.drained_s is not None for r in rounds) else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--generators", type=int, default=1, help="client processes")
    parser.add_argument("--connect-concurrency", type=int, default=64)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    return parser.parse_args(argv)


async def one_round(api: Proc, token: str, args: argparse.Namespace) -> Round:
    url = base_url(api.port)
    pid = api.popen.pid
    gauge_before, rss_before = open_streams(url), rss_kib(pid)
    async with fleet(
        targets=[f"127.0.0.1:{api.port}"],
        count=args.clients,
        processes=args.generators,
        path="/api/v1/events",
        token=token,
        connect_concurrency=args.connect_concurrency,
    ) as clients:
        await clients.wait_ready(timeout=30 + args.clients / 20)
        gauge_with, rss_with = open_streams(url), rss_kib(pid)
        await clients.command("close")
        drained_s = await wait_for_gauge(url, gauge_before)
    return Round(
        gauge=(gauge_before, gauge_with, open_streams(url)),
        rss_kib=(rss_before, rss_with, rss_kib(pid)),
        clients=args.clients,
        drained_s=drained_s,
    )


async def wait_for_gauge(url: str, baseline: float) -> float | None:
    """Seconds until the open-stream gauge is back at ``baseline``; None on the deadline."""
    start = time.monotonic()
    while time.monotonic() - start < CLOSE_DEADLINE_SECONDS:
        if await asyncio.to_thread(open_streams, url) <= baseline:
            return time.monotonic() - start
        await asyncio.sleep(POLL_SECONDS)
    return None


def print_rounds(rounds: Sequence[Round]) -> None:
    header = (
        f"{'round':>5} {'clients':>7} {'gauge before/with/after':>24} "
        f"{'RSS KiB before/with/after':>27} {'KiB/stream open':>15} {'KiB/stream kept':>15} "
        f"{'gauge back in':>13}"
    )
    print(header)
    print("-" * len(header))
    for index, r in enumerate(rounds, 1):
        gauge = "/".join(f"{value:.0f}" for value in r.gauge)
        rss = "/".join(str(value) for value in r.rss_kib)
        back = f"{r.drained_s:.2f} s" if r.drained_s is not None else "NEVER"
        print(
            f"{index:>5} {r.clients:>7} {gauge:>24} {rss:>27} {r.growth_per_stream:>15.1f} "
            f"{r.kept_per_stream:>15.1f} {back:>13}"
        )
    if len(rounds) > 1:
        first, last = rounds[0].rss_kib[0], rounds[-1].rss_kib[2]
        print(f"\nRSS after the last round vs before the first: {last - first:+d} KiB")
        for index, (prev, cur) in enumerate(zip(rounds, rounds[1:], strict=False), 2):
            print(f"round {index} peak vs round {index - 1} peak: "
                  f"{cur.rss_kib[1] - prev.rss_kib[1]:+d} KiB")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
