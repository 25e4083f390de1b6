"""Request-path benchmark: each path as a ratio to ``/healthz`` of the same replica.

    python -m bench.api [--runs 3] [--seconds 8] [--connections 32] [--storms 3]
                        [--paths healthz,get,page,create,storm]
                        [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Needs ``wrk`` on PATH (Debian: ``apt-get install wrk``). Starts its own in-memory
redis-server on a free port, a fresh PostgreSQL database (migrated), one
``escalations worker`` and two ``escalations api`` replicas on 127.0.0.1, and
seeds 60 handoffs in one org. Then, ``--runs`` times, one wrk (one thread,
``--connections`` keep-alive connections, ``--seconds`` each) drives replica one:

  healthz        GET /healthz (the same middleware, no auth, no database)
  get by id      GET /api/v1/handoffs/{id}
  queue page     GET /api/v1/handoffs?limit=50 (a full page)
  create 1 org   POST /api/v1/handoffs, every request a new session of one org
  create 16 orgs the same, round robin over 16 orgs

and a 200-claim storm runs over both replicas (``--storms`` storms per run, the
median time until every claim was answered). ``--paths`` runs only some of them
(``healthz``, ``get``, ``page``, ``create`` (both), ``storm``); ``/healthz`` always
runs, as every ratio's base. Prints each run, then the medians
over runs: req/s, p50 and p99 (wrk's latency distribution), the replica's CPU
time per request (from /proc: steadier than req/s on a busy machine) and the
ratio of req/s to the same run's ``/healthz``. After the creates it checks that every
handoff the database holds has its ``handoff_created`` event and its RQ job, and
that each storm had exactly one winner; exits 1 when not.

Before each run and before its storms it waits, unmeasured, until the worker has
assessed every handoff created so far: the creates leave thousands of jobs, and the
worker's CPU would otherwise count against what is measured next.

Abuse limits are raised out of the way (as in the tests). Everything it started,
and the database, is removed at the end, also on errors, Ctrl-C or SIGTERM.
"""

import argparse
import asyncio
import dataclasses
import json
import math
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from rq import Queue
from sqlalchemy import text

from bench.common import DEFAULT_PG_ADMIN_URL, install_sigterm_handler, process_cpu_seconds
from shared.core import keys
from shared.core.db import make_engine
from shared.core.models import Role
from shared.core.redis_client import make_redis
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
from testkit.samples import handoff_body
from testkit.storm import (
    bearer,
    claim_storm,
    create_handoff,
    engineer_headers,
    make_seniors,
    open_claimers,
    storm_problems,
)
from testkit.workers import start_worker

SEEDED_HANDOFFS = 60
QUEUE_PAGE = 50
CREATE_ORGS = 16
STORM_CLAIMS = 200
DRAIN_TIMEOUT_S = 600
SESSION_MARK = "@SESSION@"
#: What ``--paths`` can pick (``create`` is both create rows).
PATHS = ("healthz", "get", "page", "create", "storm")


@dataclass(frozen=True)
class Row:
    """One wrk measurement."""

    name: str
    rate: float  # requests per second
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors
    cpu_ms: float = math.nan  # the replica's CPU time per request


@dataclass
class Run:
    rows: list[Row]
    storm_ms: float  # median over the run's storms: start signal to the last answer
    drained_s: float  # waited for the worker's backlog before measuring (not measured)


# --- wrk ---------------------------------------------------------------------------


def lua_string(value: str) -> str:
    return f"[==[{value}]==]"


def get_script(path: str, token: str | None) -> str:
    header = f'wrk.headers["Authorization"] = {lua_string("Bearer " + token)}\n' if token else ""
    return f'wrk.method = "GET"\nwrk.path = {lua_string(path)}\n{header}'


def create_script(tokens: Sequence[str], run_tag: str) -> str:
    """Every request a new session id, round robin over ``tokens`` (one per org)."""
    body = json.dumps(handoff_body(SESSION_MARK))
    before, after = body.split(SESSION_MARK)
    token_list = ", ".join(lua_string(t) for t in tokens)
    return f"""
local tokens = {{{token_list}}}
local before, after = {lua_string(before)}, {lua_string(after)}
local n = 0
request = function()
  n = n + 1
  local headers = {{}}
  headers["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1]
  headers["Content-Type"] = "application/json"
  local body = before .. "{run_tag}-" .. n .. after
  return wrk.format("POST", "/api/v1/handoffs", headers, body)
end
"""


def run_wrk(name: str, url: str, script: str, args: argparse.Namespace, pid: int) -> Row:
    """One wrk run against ``url``; ``pid`` is the replica whose CPU is counted."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
        file.write(script)
        file.flush()
        argv = [
            "wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
            "--timeout", "10s", "-s", file.name, url,
        ]  # fmt: skip
        cpu_before = process_cpu_seconds([pid])
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        cpu = process_cpu_seconds([pid]) - cpu_before
    row = parse_wrk(name, out)
    requests = int(_find(r"(\d+) requests in", out))
    return dataclasses.replace(row, cpu_ms=cpu * 1000 / max(requests, 1))


def parse_wrk(name: str, out: str) -> Row:
    rate = float(_find(r"Requests/sec:\s+([\d.]+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(n) for n in sockets.groups()) if sockets else 0
    )
    return Row(
        name=name,
        rate=rate,
        p50_ms=_duration_ms(_find(r"\n\s+50%\s+(\S+)", out)),
        p99_ms=_duration_ms(_find(r"\n\s+99%\s+(\S+)", out)),
        errors=errors,
    )


def _find(pattern: str, out: str) -> str:
    match = re.search(pattern, out)
    if match is None:
        raise RuntimeError(f"unexpected wrk output (no {pattern!r}):\n{out}")
    return match.group(1)


def _duration_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


# --- the cluster and its data ------------------------------------------------------------


@dataclass
class Cluster:
    urls: list[str]
    pids: list[int]
    secret: str
    database_url: str
    redis_url: str


def start_cluster(stack: ExitStack, args: argparse.Namespace, log_dir: Path) -> Cluster:
    redis = stack.enter_context(running(start_redis(free_port(), log_dir=log_dir)))
    database_url = stack.enter_context(fresh_database(args.pg_admin_url, prefix="bench_api"))
    secret = secrets.token_urlsafe(32)
    env = api_env(database_url=database_url, redis_url=redis_url(redis.port), jwt_secret=secret)
    client = make_redis(redis_url(redis.port))
    stack.callback(client.close)
    worker = start_worker(
        f"bench-api-{uuid.uuid4().hex[:6]}", env=env, log_dir=log_dir, redis=client
    )
    stack.callback(worker.stop)
    replicas: list[Proc] = [
        stack.enter_context(running(start_api(free_port(), env=env, log_dir=log_dir)))
        for _ in range(2)
    ]
    return Cluster(
        urls=[base_url(p.port) for p in replicas],
        pids=[p.popen.pid for p in replicas],
        secret=secret,
        database_url=database_url,
        redis_url=redis_url(redis.port),
    )


def token(cluster: Cluster, role: Role, org: str) -> str:
    headers = bearer(secret=cluster.secret, sub=f"{role.value}-1", name="Bench", role=role, org=org)
    return headers["Authorization"].removeprefix("Bearer ")


def seed(cluster: Cluster, org: str) -> str:
    """``SEEDED_HANDOFFS`` handoffs in ``org``; returns the id of one."""
    headers = {"Authorization": f"Bearer {token(cluster, Role.engineer, org)}"}
    with httpx.Client(base_url=cluster.urls[0], headers=headers, timeout=30) as client:
        ids = []
        for n in range(SEEDED_HANDOFFS):
            response = client.post("/api/v1/handoffs", json=handoff_body(f"seed-{n}"))
            response.raise_for_status()
            ids.append(response.json()["id"])
    return str(ids[0])


def check_creates(cluster: Cluster) -> list[str]:
    """Every handoff has its ``handoff_created`` event and its RQ job."""
    engine = make_engine(cluster.database_url)
    with engine.connect() as connection:
        ids = [row[0] for row in connection.execute(text("SELECT id FROM handoffs"))]
        without_event = connection.execute(
            text(
                "SELECT count(*) FROM handoffs h WHERE NOT EXISTS (SELECT 1 FROM events e"
                " WHERE e.handoff_id = h.id AND e.type = 'handoff_created')"
            )
        ).scalar_one()
    engine.dispose()
    redis = make_redis(cluster.redis_url)
    with redis.pipeline(transaction=False) as pipe:
        for handoff_id in ids:
            pipe.exists(f"rq:job:{keys.assessment_job_id(handoff_id)}")
        without_job = sum(1 for found in pipe.execute() if not found)
    redis.close()
    problems = []
    if without_event:
        problems.append(f"{without_event} of {len(ids)} handoffs have no handoff_created event")
    if without_job:
        problems.append(f"{without_job} of {len(ids)} handoffs have no RQ job")
    return problems


def drain_assessments(cluster: Cluster) -> float:
    """Waits (up to ``DRAIN_TIMEOUT_S``) until the worker has assessed every
    handoff created so far; the seconds waited. The creates leave thousands of
    jobs, and a worker busy with them shared the cores with whatever was measured
    next (the storm, the next run's reads)."""
    redis = make_redis(cluster.redis_url)
    queue = Queue(keys.ASSESSMENTS_QUEUE, connection=redis)
    began = time.monotonic()
    try:
        while queue.count or queue.started_job_registry.count:
            if time.monotonic() - began > DRAIN_TIMEOUT_S:
                raise SystemExit(f"the worker did not drain its queue in {DRAIN_TIMEOUT_S} s")
            time.sleep(0.2)
    finally:
        redis.close()
    return time.monotonic() - began


# --- one run -------------------------------------------------------------------------


def measure(cluster: Cluster, args: argparse.Namespace, run: int, seeded_id: str) -> Run:
    waited = drain_assessments(cluster)
    url = cluster.urls[0]
    senior = token(cluster, Role.senior, "bench")
    one_org = [token(cluster, Role.engineer, "bench-create")]
    orgs = [token(cluster, Role.engineer, f"bench-create-{n}") for n in range(CREATE_ORGS)]
    tag = f"r{run}-{uuid.uuid4().hex[:6]}"
    plan = [
        ("healthz", "healthz", get_script("/healthz", None)),
        ("get", "get by id", get_script(f"/api/v1/handoffs/{seeded_id}", senior)),
        (
            "page",
            f"queue page ({QUEUE_PAGE})",
            get_script(f"/api/v1/handoffs?limit={QUEUE_PAGE}", senior),
        ),
        ("create", "create, 1 org", create_script(one_org, f"{tag}-one")),
        ("create", f"create, {CREATE_ORGS} orgs", create_script(orgs, f"{tag}-many")),
    ]
    rows = [
        run_wrk(name, url, script, args, cluster.pids[0])
        for key, name, script in plan
        if key == "healthz" or key in args.paths
    ]
    if "storm" not in args.paths:
        return Run(rows=rows, storm_ms=math.nan, drained_s=waited)
    waited += drain_assessments(cluster)
    storms = asyncio.run(run_storms(cluster, args, org=f"bench-storm-{run}"))
    return Run(rows=rows, storm_ms=statistics.median(storms), drained_s=waited)


async def run_storms(cluster: Cluster, args: argparse.Namespace, *, org: str) -> list[float]:
    seniors = make_seniors(STORM_CLAIMS, secret=cluster.secret, org=org)
    engineer = engineer_headers(secret=cluster.secret, org=org)
    times = []
    async with open_claimers(seniors, cluster.urls) as claimers:
        for index in range(args.storms):
            handoff_id = await create_handoff(claimers[index % 2].client, headers=engineer)
            storm = await claim_storm(claimers, handoff_id=handoff_id)
            problems = storm_problems(storm)
            if problems:
                raise SystemExit(f"claim contract broken: {problems}")
            times.append(storm.elapsed_s * 1000)
    return times


# --- report --------------------------------------------------------------------------


def print_run(title: str, rows: Sequence[Row], storm_ms: float) -> None:
    base = rows[0].rate
    print(f"\n{title}")
    header = (
        f"{'path':<20} {'req/s':>9} {'p50':>10} {'p99':>10} {'CPU/req':>10} "
        f"{'vs /healthz':>12} {'errors':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.name:<20} {row.rate:>9.0f} {row.p50_ms:>7.1f} ms {row.p99_ms:>7.1f} ms "
            f"{row.cpu_ms:>7.2f} ms {row.rate / base:>12.2f} {row.errors:>7}"
        )
    if not math.isnan(storm_ms):
        print(f"{f'claim storm ({STORM_CLAIMS})':<20} all answered in {storm_ms:.0f} ms (median)")


def median_rows(runs: Sequence[Run]) -> list[Row]:
    """Per path, the medians over runs (ratios use the median of per-run ratios)."""
    medians = []
    for index, first in enumerate(runs[0].rows):
        rows = [run.rows[index] for run in runs]
        medians.append(
            Row(
                name=first.name,
                rate=statistics.median(r.rate for r in rows),
                p50_ms=statistics.median(r.p50_ms for r in rows),
                p99_ms=statistics.median(r.p99_ms for r in rows),
                errors=sum(r.errors for r in rows),
                cpu_ms=statistics.median(r.cpu_ms for r in rows),
            )
        )
    return medians


def print_ratios(runs: Sequence[Run]) -> None:
    print("\nratio to /healthz, each run, and the median:")
    for index, first in enumerate(runs[0].rows[1:], start=1):
        ratios = [run.rows[index].rate / run.rows[0].rate for run in runs]
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"  {first.name:<20} {shown}  → {statistics.median(ratios):.2f}")


# --- main ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench/api.py needs wrk (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    install_sigterm_handler()
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-api-")))
        cluster = start_cluster(stack, args, log_dir)
        seeded_id = seed(cluster, "bench")
        runs = []
        for run in range(args.runs):
            runs.append(measure(cluster, args, run, seeded_id))
            print_run(f"run {run + 1}", runs[-1].rows, runs[-1].storm_ms)
            print(f"(waited {runs[-1].drained_s:.0f} s, unmeasured, for the worker's backlog)")
        print_run(
            f"medians of {args.runs} runs",
            median_rows(runs),
            statistics.median(r.storm_ms for r in runs),
        )
        print_ratios(runs)
        problems = check_creates(cluster)
        errors = sum(row.errors for run in runs for row in run.rows)
        for problem in problems:
            print(f"PROBLEM: {problem}")
        if errors:
            print(f"PROBLEM: {errors} error answers (non-2xx or socket errors)")
        return 1 if problems or errors else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--storms", type=int, default=3)
    parser.add_argument(
        "--paths",
        type=lambda value: set(value.split(",")) - {""},
        default=set(PATHS),
        help=f"comma-separated, of: {','.join(PATHS)} (default: all)",
    )
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    args = parser.parse_args(argv)
    if unknown := args.paths - set(PATHS):
        parser.error(f"unknown --paths {sorted(unknown)}; known: {','.join(PATHS)}")
    return args


if __name__ == "__main__":
    sys.exit(main())
