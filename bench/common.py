"""What several benchmarks share and the tests do not: the repository's root, the PostgreSQL
they create their databases next to, a SIGTERM that cleans up, nearest-rank percentiles and
the CPU time of processes (Linux /proc). Processes, databases and HTTP helpers are in testkit."""

import argparse
import math
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

#: The repository's root: what a process a benchmark starts (an ``escalations worker``
#: importing ``bench.trivial_job``, ``python -m testkit.openai_stub``) gets as its ``PYTHONPATH``.
REPO = Path(__file__).resolve().parents[1]
#: Each benchmark creates (and drops) a fresh database next to this one (``--pg-admin-url``).
DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # unwinds every ExitStack, so everything is cleaned up


def install_sigterm_handler() -> None:
    signal.signal(signal.SIGTERM, exit_on_sigterm)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty sequence: the value at rank ``ceil(pct/100 * n)``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def process_cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds the processes (all threads) used so far, from
    Linux's /proc; NaN where that cannot be read."""
    total_ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return math.nan
        total_ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return total_ticks / os.sysconf("SC_CLK_TCK")


def add_prepared_statements_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prepared-statements",
        action="store_true",
        help="run the project with ESCALATIONS_DATABASE_PREPARED_STATEMENTS=true (a direct "
        "connection, preparing as psycopg does by default, as the floor's does)",
    )


def prepared_statements_env(args: argparse.Namespace) -> dict[str, str]:
    """``api_env`` extras for ``--prepared-statements``."""
    return {"database_prepared_statements": "true"} if args.prepared_statements else {}
