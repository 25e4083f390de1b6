"""Claim-storm benchmark: the Redis lock against the database alone.

    python -m bench.claims [--storms 5] [--claims 200] [--warmup 1]
                           [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Starts its own in-memory redis-server on a free port and creates a fresh
PostgreSQL database (through psycopg on the admin URL's database, migrated with
``shared.core.migrate.upgrade_to_head``). Then, for each mode, it starts two
``escalations api`` replicas on 127.0.0.1 and runs ``--warmup`` unmeasured
storms followed by ``--storms`` measured ones. A storm creates a handoff and
fires ``--claims`` concurrent claims by as many distinct seniors, alternating
between the replicas, over pre-opened keep-alive connections.

Modes:
  A  Redis claim lock, then the conditional update (``WHERE status = 'pending'``)
  B  the conditional update alone (replicas run with ESCALATIONS_CLAIM_LOCK_ENABLED=false)

Prints one row per mode:
  runs                 measured storms
  median all answered  start signal to the storm's last answer, median over storms
  median claims/s      claims / that time, median over storms
  p99 claim            single-claim latency (request sent to response read),
                       over every measured claim of the mode
  CPU/claim            both replicas' CPU time during a storm / claims, median
                       (steadier than wall time on a busy machine; Linux /proc)
  in flight            claims already sent when the first answer arrived, median
                       (how much the storm really overlapped)
  winners per storm    200s in each storm; each must be 1
then the B/A ratios. Exits 1 if any storm broke the claim contract (not exactly
one 200, or a 409 naming another winner), 0 otherwise.

Every process it started and the database are removed at the end, also on
errors, Ctrl-C or SIGTERM.
"""

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    DEFAULT_PG_ADMIN_URL,
    install_sigterm_handler,
    percentile,
    process_cpu_seconds,
)
from testkit.pg import fresh_database
from testkit.procs import (
    Proc,
    api_env,
    base_url,
    free_port,
    redis_url,
    running,
    start_api,
    start_redis,
)
from testkit.storm import (
    Storm,
    claim_storm,
    create_handoff,
    engineer_headers,
    make_seniors,
    open_claimers,
    storm_problems,
)

REPLICAS = 2


@dataclass(frozen=True)
class Mode:
    key: str
    label: str
    lock_enabled: bool


MODES = (
    Mode("A", "redis lock + conditional update", lock_enabled=True),
    Mode("B", "database alone", lock_enabled=False),
)


@dataclass(frozen=True)
class ModeResult:
    """The measured storms of one mode and the contract violations they showed."""

    mode: Mode
    storms: list[Storm]
    server_cpu_s: list[float]  # CPU both replicas used during each storm
    problems: list[str]

    @property
    def median_ms(self) -> float:
        return 1000 * statistics.median(storm.elapsed_s for storm in self.storms)

    @property
    def median_rate(self) -> float:
        return statistics.median(len(storm.answers) / storm.elapsed_s for storm in self.storms)

    @property
    def p99_ms(self) -> float:
        latencies = [answer.latency_s for storm in self.storms for answer in storm.answers]
        return 1000 * percentile(latencies, 99)

    @property
    def cpu_ms_per_claim(self) -> float:
        per_claim = [
            cpu / len(storm.answers)
            for storm, cpu in zip(self.storms, self.server_cpu_s, strict=True)
        ]
        return 1000 * statistics.median(per_claim)

    @property
    def median_overlap(self) -> float:
        return statistics.median(storm.sent_before_first_answer for storm in self.storms)

    @property
    def winners(self) -> list[int]:
        return [len(storm.with_status(200)) for storm in self.storms]


# --- main --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="claims-bench-")))
        database_url = stack.enter_context(fresh_database(args.pg_admin_url))
        redis = stack.enter_context(running(start_redis(free_port(), log_dir=log_dir)))
        results = [
            run_mode(mode, args, database_url=database_url, redis=redis, log_dir=log_dir)
            for mode in MODES
        ]
    print_table(results)
    return 1 if any(result.problems for result in results) else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storms", type=_positive, default=5, help="measured storms per mode")
    parser.add_argument("--claims", type=_positive, default=200, help="concurrent claims per storm")
    parser.add_argument("--warmup", type=_non_negative, default=1, help="unmeasured storms first")
    parser.add_argument(
        "--pg-admin-url",
        default=DEFAULT_PG_ADMIN_URL,
        help="a database to connect to for CREATE/DROP DATABASE",
    )
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be at least 0")
    return value


# --- resources ---------------------------------------------------------------------


# --- one mode ------------------------------------------------------------------------


def run_mode(
    mode: Mode, args: argparse.Namespace, *, database_url: str, redis: Proc, log_dir: Path
) -> ModeResult:
    """Start this mode's replicas, run its storms, stop the replicas."""
    secret = secrets.token_urlsafe(32)
    env = api_env(
        database_url=database_url,
        redis_url=redis_url(redis.port),
        jwt_secret=secret,
        claim_lock_enabled=str(mode.lock_enabled).lower(),
    )
    with ExitStack() as stack:
        replicas = [
            stack.enter_context(running(start_api(free_port(), env=env, log_dir=log_dir)))
            for _ in range(REPLICAS)
        ]
        urls = [base_url(proc.port) for proc in replicas]
        pids = [proc.popen.pid for proc in replicas]
        measured = asyncio.run(
            run_storms(urls, args, secret=secret, org=f"bench-{mode.key}", pids=pids)
        )
    storms = [storm for storm, _ in measured]
    problems = [f"storm {i}: {p}" for i, storm in enumerate(storms) for p in storm_problems(storm)]
    return ModeResult(mode, storms, [cpu for _, cpu in measured], problems)


async def run_storms(
    urls: list[str], args: argparse.Namespace, *, secret: str, org: str, pids: list[int]
) -> list[tuple[Storm, float]]:
    """``args.warmup`` unmeasured storms, then ``args.storms`` measured ones, each
    with the CPU seconds the processes ``pids`` spent while it ran."""
    seniors = make_seniors(args.claims, secret=secret, org=org)
    engineer = engineer_headers(secret=secret, org=org)
    measured = []
    async with open_claimers(seniors, urls) as claimers:
        for index in range(args.warmup + args.storms):
            creator = claimers[index % len(urls)].client
            handoff_id = await create_handoff(creator, headers=engineer)
            cpu_before = process_cpu_seconds(pids)
            storm = await claim_storm(claimers, handoff_id=handoff_id)
            measured.append((storm, process_cpu_seconds(pids) - cpu_before))
    return measured[args.warmup :]


# --- report ------------------------------------------------------------------------


def print_table(results: Sequence[ModeResult]) -> None:
    header = (
        f"{'mode':<36} {'runs':>4} {'median all answered':>20} {'median claims/s':>16} "
        f"{'p99 claim':>10} {'CPU/claim':>9} {'in flight':>9}  winners per storm"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        print(
            f"{result.mode.key + '  ' + result.mode.label:<36} {len(result.storms):>4} "
            f"{result.median_ms:>17.1f} ms {result.median_rate:>16.0f} "
            f"{result.p99_ms:>7.1f} ms {result.cpu_ms_per_claim:>6.2f} ms "
            f"{result.median_overlap:>9.0f}  "
            f"{' '.join(map(str, result.winners))}"
        )
    print_ratios(results)
    for result in results:
        for problem in result.problems:
            print(f"CONTRACT BROKEN in mode {result.mode.key}: {problem}")


def print_ratios(results: Sequence[ModeResult]) -> None:
    by_key = {result.mode.key: result for result in results}
    a, b = by_key["A"], by_key["B"]
    print(
        f"\nB/A: median time {b.median_ms / a.median_ms:.2f}x, "
        f"claims/s {b.median_rate / a.median_rate:.2f}x, p99 {b.p99_ms / a.p99_ms:.2f}x, "
        f"CPU/claim {b.cpu_ms_per_claim / a.cpu_ms_per_claim:.2f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
