"""Request-path benchmark: each hot path as a ratio to its floor, measured in the same run.

    python -m bench.api [--runs 3] [--seconds 8] [--connections 32] [--storms 3]
                        [--paths healthz,get,page,create,auth,storm] [--profile DIR]
                        [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Needs ``wrk`` on PATH (Debian: ``apt-get install wrk``). Starts its own in-memory
redis-server on a free port, a fresh PostgreSQL database (migrated), two
``escalations api`` replicas, the floor
(``bench/floor.py``'s plain FastAPI + uvicorn + PyJWT + psycopg app, on the same
database) and a small identity provider of its own (discovery and JWKS, RS256) on
127.0.0.1; seeds 60 handoffs in one org through the project and copies the
project's JSON of each into the floor's table. Then, ``--runs`` times, one wrk
(one thread, ``--connections`` keep-alive connections, ``--seconds`` each) drives
replica one and its base in turn, with the same script (the base first in every
other run):

  healthz          GET /healthz                       base: the floor's /healthz
  get by id        GET /api/v1/handoffs/{id}           base: the floor (a primary-key SELECT)
  queue page       GET /api/v1/handoffs?limit=50       base: the floor (50 rows of the org)
  create 1 org     POST /api/v1/handoffs, every request a new session of one org
                                                       base: the floor (one INSERT transaction)
  create 16 orgs   the same, round robin over 16 orgs  base: the floor, the same 16 tokens
  get, API key     get by id with an API key (senior)  base: get by id with an HS256 token
  get, provider    get by id with the provider's token base: get by id with an HS256 token

``--paths`` picks some (``healthz``, ``get``, ``page``, ``create`` (both rows),
``auth`` (both rows), ``storm``: a 200-claim storm over both replicas, ``--storms``
storms per run, the median time until every claim was answered; default: all but
``storm``). Prints each run, then the medians over runs: req/s, p50 and p99 (wrk's),
the server's CPU time per request (from /proc) for the project and its base, the
same for the PostgreSQL backends connected to the bench's database ("db CPU/req":
the server is on this machine, sharing its cores), and the ratio of req/s
(project ÷ base; the median of the per-run ratios).
``--profile DIR`` also records each side of each pair with ``py-spy record --gil``
(collapsed stacks, one file each; ``bench/profile_summary.py`` sums them up).

No worker runs while wrk does: one ``escalations worker --burst`` assesses the
seeded handoffs before the runs (the floor copies their assessed JSON), and the
creates' jobs stay queued. The floor has no worker, and on two shared cores a
worker running the creates' jobs took a core from what was measured (a worker
paused with SIGSTOP instead could stop inside a transaction holding an org's
event counter, and every create of that org waited for it). After the runs it
checks that every handoff the database holds has its ``handoff_created`` event
and its RQ job, and that each storm had exactly one winner; exits 1 when not, or
on any error answer.

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
import psycopg
from rq import Queue
from sqlalchemy import text

from bench import floor
from bench.common import (
    DEFAULT_PG_ADMIN_URL,
    add_prepared_statements_option,
    install_sigterm_handler,
    prepared_statements_env,
    process_cpu_seconds,
)
from shared.core import keys
from shared.core.db import make_engine
from shared.core.models import Role
from shared.core.redis_client import make_redis
from testkit.identity import CLIENT_ID, KeyServer, SigningKey
from testkit.pg import fresh_database
from testkit.procs import (
    Proc,
    api_env,
    base_url,
    escalations_binary,
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

SEEDED_HANDOFFS = 60
QUEUE_PAGE = 50
CREATE_ORGS = 16
STORM_CLAIMS = 200
DRAIN_TIMEOUT_S = 600
SESSION_MARK = "@SESSION@"
SEEDED_ORG = "bench"
#: What ``--paths`` can pick (``create`` and ``auth`` are two rows each).
PATHS = ("healthz", "get", "page", "create", "auth", "storm")
DEFAULT_PATHS = ("healthz", "get", "page", "create", "auth")
PROVIDER_TOKEN_SECONDS = 3600
#: py-spy's samples per second with ``--profile``.
PROFILE_RATE = 200


@dataclass(frozen=True)
class Row:
    """One wrk measurement."""

    name: str
    rate: float  # requests per second
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors
    cpu_ms: float = math.nan  # the server's CPU time per request
    db_ms: float = math.nan  # the CPU time per request of the database's backends


@dataclass(frozen=True)
class Pair:
    """One path on the project and on its base, measured one after the other."""

    name: str
    base_name: str
    project: Row
    base: Row

    @property
    def ratio(self) -> float:
        return self.project.rate / self.base.rate if self.base.rate else math.nan


@dataclass
class Run:
    pairs: list[Pair]
    storm_ms: float  # median over the run's storms: start signal to the last answer


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


def run_wrk(
    name: str,
    url: str,
    script: str,
    args: argparse.Namespace,
    pid: int,
    profile: Path | None = None,
    database_url: str | None = None,
) -> Row:
    """One wrk run against ``url``; ``pid`` is the server whose CPU is counted (and,
    with ``profile``, sampled by py-spy meanwhile into that file), and with
    ``database_url`` the PostgreSQL backends connected to that database too."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
        file.write(script)
        file.flush()
        argv = [
            "wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
            "--timeout", "10s", "-s", file.name, url,
        ]  # fmt: skip
        spy = None if profile is None else start_py_spy(pid, args.seconds, profile)
        db_before = backends_cpu(database_url)
        cpu_before = process_cpu_seconds([pid])
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        cpu = process_cpu_seconds([pid]) - cpu_before
        db_after = backends_cpu(database_url)
        if spy is not None:
            spy.wait()
    row = parse_wrk(name, out)
    requests = max(int(_find(r"(\d+) requests in", out)), 1)
    db = sum(used - db_before.get(backend, 0.0) for backend, used in db_after.items())
    return dataclasses.replace(
        row,
        cpu_ms=cpu * 1000 / requests,
        db_ms=db * 1000 / requests if database_url else math.nan,
    )


def backends_cpu(database_url: str | None) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the database
    (from /proc: the server is on this machine), but the one asking."""
    if database_url is None:
        return {}
    with psycopg.connect(floor.libpq_url(database_url), autocommit=True) as connection:
        pids = [
            row[0]
            for row in connection.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    return {pid: used for pid in pids if not math.isnan(used := process_cpu_seconds([pid]))}


def start_py_spy(pid: int, seconds: int, output: Path) -> subprocess.Popen[bytes]:
    """``py-spy record`` of ``pid`` for the middle of a wrk run, as collapsed stacks
    in ``output``: only the thread holding the GIL is sampled (where a replica's one
    core of Python goes; a thread waiting on a socket or for the GIL is not
    counted), without pausing the process."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    argv = [
        binary, "record", "--pid", str(pid), "--duration", str(max(1, seconds - 2)),
        "--rate", str(PROFILE_RATE), "--format", "raw", "--gil", "--nonblocking",
        "--output", str(output),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
    env: dict[str, str]
    log_dir: Path
    floor: floor.Server
    provider: KeyServer


@dataclass(frozen=True)
class Target:
    """Where one side of a pair is sent: a server and the process whose CPU counts."""

    url: str
    pid: int


def start_cluster(stack: ExitStack, args: argparse.Namespace, log_dir: Path) -> Cluster:
    redis = stack.enter_context(running(start_redis(free_port(), log_dir=log_dir)))
    database_url = stack.enter_context(fresh_database(args.pg_admin_url, prefix="bench_api"))
    secret = secrets.token_urlsafe(32)
    provider = stack.enter_context(KeyServer(SigningKey("RS256", kid="bench-1")))
    env = api_env(
        database_url=database_url,
        redis_url=redis_url(redis.port),
        jwt_secret=secret,
        # ``groups`` name roles as they are, ``tenant`` is the org
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_role_claim="groups",
        oidc_org_claim="tenant",
        **prepared_statements_env(args),
    )
    replicas: list[Proc] = [
        stack.enter_context(running(start_api(free_port(), env=env, log_dir=log_dir)))
        for _ in range(2)
    ]
    plain = floor.start_plain(
        stack, database_url=database_url, secret=secret, log_dir=log_dir, env=env
    )
    return Cluster(
        urls=[base_url(p.port) for p in replicas],
        pids=[p.popen.pid for p in replicas],
        secret=secret,
        database_url=database_url,
        redis_url=redis_url(redis.port),
        env=env,
        log_dir=log_dir,
        floor=plain,
        provider=provider,
    )


def token(cluster: Cluster, role: Role, org: str) -> str:
    headers = bearer(secret=cluster.secret, sub=f"{role.value}-1", name="Bench", role=role, org=org)
    return headers["Authorization"].removeprefix("Bearer ")


def provider_token(cluster: Cluster, org: str) -> str:
    """A senior of ``org`` as the identity provider signs them (RS256, with a ``kid``)."""
    provider = cluster.provider
    claims = provider.claims(groups=[Role.senior.value], tenant=org, email=None,
                             exp=int(time.time()) + PROVIDER_TOKEN_SECONDS)  # fmt: skip
    return provider.keys[0].sign(claims)


def api_key(cluster: Cluster, org: str) -> str:
    """A new API key of ``org`` acting as a senior."""
    headers = {"Authorization": f"Bearer {token(cluster, Role.admin, org)}"}
    response = httpx.post(
        f"{cluster.urls[0]}/api/v1/api-keys",
        json={"name": "bench", "role": "senior"},
        headers=headers,
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["key"])


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


def copy_to_floor(cluster: Cluster, org: str) -> int:
    """The project's JSON of each of ``org``'s handoffs (assessed by now) into the floor."""
    headers = {"Authorization": f"Bearer {token(cluster, Role.senior, org)}"}
    response = httpx.get(
        f"{cluster.urls[0]}/api/v1/handoffs",
        params={"limit": 200},
        headers=headers,
        timeout=30,
    )
    response.raise_for_status()
    return floor.fill_floor(cluster.database_url, response.json()["items"])


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


def assess_all(cluster: Cluster) -> float:
    """Runs one ``escalations worker --burst`` until every queued assessment is
    done; the seconds it took."""
    began = time.monotonic()
    argv = [escalations_binary(), "worker", "--burst", "--queues", keys.ASSESSMENTS_QUEUE,
            "--name", f"bench-api-{uuid.uuid4().hex[:6]}"]  # fmt: skip
    with (cluster.log_dir / "burst-worker.log").open("ab") as log:
        subprocess.run(
            argv, env=cluster.env, stdout=log, stderr=subprocess.STDOUT,
            timeout=DRAIN_TIMEOUT_S, check=True,
        )  # fmt: skip
    redis = make_redis(cluster.redis_url)
    try:
        left = Queue(keys.ASSESSMENTS_QUEUE, connection=redis).count
    finally:
        redis.close()
    if left:
        raise SystemExit(f"the burst worker left {left} assessments queued")
    return time.monotonic() - began


# --- one run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One pair to measure: the script for each side (the same unless the base's
    credential differs) and where each side is sent."""

    key: str  # which --paths entry runs it
    name: str
    base_name: str
    project: tuple[Target, str]
    base: tuple[Target, str]


def plan(cluster: Cluster, run: int, seeded_id: str, credentials: dict[str, str]) -> list[Step]:
    project = Target(cluster.urls[0], cluster.pids[0])
    plain = Target(cluster.floor.url, cluster.floor.pid)
    senior = token(cluster, Role.senior, SEEDED_ORG)
    one_org = [token(cluster, Role.engineer, "bench-create")]
    orgs = [token(cluster, Role.engineer, f"bench-create-{n}") for n in range(CREATE_ORGS)]
    tag = f"r{run}-{uuid.uuid4().hex[:6]}"
    get_path = f"/api/v1/handoffs/{seeded_id}"
    page_path = f"/api/v1/handoffs?limit={QUEUE_PAGE}"

    def same(key: str, name: str, script: str) -> Step:
        return Step(key, name, "floor", (project, script), (plain, script))

    def credential(name: str, secret: str) -> Step:
        hs256 = get_script(get_path, senior)
        return Step(
            "auth", name, "HS256", (project, get_script(get_path, secret)), (project, hs256)
        )

    return [
        same("healthz", "healthz", get_script("/healthz", None)),
        same("get", "get by id", get_script(get_path, senior)),
        same("page", f"queue page ({QUEUE_PAGE})", get_script(page_path, senior)),
        same("create", "create, 1 org", create_script(one_org, f"{tag}-one")),
        same("create", f"create, {CREATE_ORGS} orgs", create_script(orgs, f"{tag}-many")),
        credential("get, API key", credentials["api_key"]),
        credential("get, provider token", provider_token(cluster, SEEDED_ORG)),
    ]


def measure(
    cluster: Cluster,
    args: argparse.Namespace,
    run: int,
    seeded_id: str,
    credentials: dict[str, str],
) -> Run:
    base_first = run % 2 == 1
    pairs = []
    for step in plan(cluster, run, seeded_id, credentials):
        if step.key not in args.paths:
            continue
        sides = [("base", step.base), ("project", step.project)]
        rows = {}
        for side, (target, script) in sides if base_first else reversed(sides):
            profile = None
            if args.profile is not None:
                slug = re.sub(r"[^a-z0-9]+", "-", step.name.lower()).strip("-")
                profile = args.profile / f"run{run + 1}-{slug}-{side}.txt"
            rows[side] = run_wrk(
                step.name, target.url, script, args, target.pid, profile, cluster.database_url
            )
        pairs.append(Pair(step.name, step.base_name, rows["project"], rows["base"]))
    if "storm" not in args.paths:
        return Run(pairs=pairs, storm_ms=math.nan)
    storms = asyncio.run(run_storms(cluster, args, org=f"bench-storm-{run}"))
    return Run(pairs=pairs, storm_ms=statistics.median(storms))


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


def print_run(title: str, pairs: Sequence[Pair], storm_ms: float) -> None:
    print(f"\n{title}")
    header = (
        f"{'path':<22} {'base':<6} {'req/s':>13} {'p50 ms':>13} {'p99 ms':>13} "
        f"{'CPU/req ms':>13} {'db CPU/req':>13} {'ratio':>6} {'errors':>6}"
    )
    print(header)
    sub = "proj / base"
    print(f"{'':<29} {sub:>13} {sub:>13} {sub:>13} {sub:>13} {sub:>13}")
    print("-" * len(header))
    for pair in pairs:
        p, b = pair.project, pair.base
        print(
            f"{pair.name:<22} {pair.base_name:<6} {p.rate:>6.0f} /{b.rate:>5.0f} "
            f"{p.p50_ms:>6.1f} /{b.p50_ms:>5.1f} {p.p99_ms:>6.1f} /{b.p99_ms:>5.1f} "
            f"{p.cpu_ms:>6.2f} /{b.cpu_ms:>5.2f} {p.db_ms:>6.2f} /{b.db_ms:>5.2f} "
            f"{pair.ratio:>6.2f} {p.errors + b.errors:>6}"
        )
    if not math.isnan(storm_ms):
        print(f"{f'claim storm ({STORM_CLAIMS})':<22} all answered in {storm_ms:.0f} ms (median)")


def _median_row(rows: Sequence[Row]) -> Row:
    return Row(
        name=rows[0].name,
        rate=statistics.median(r.rate for r in rows),
        p50_ms=statistics.median(r.p50_ms for r in rows),
        p99_ms=statistics.median(r.p99_ms for r in rows),
        errors=sum(r.errors for r in rows),
        cpu_ms=statistics.median(r.cpu_ms for r in rows),
        db_ms=statistics.median(r.db_ms for r in rows),
    )


def median_pairs(runs: Sequence[Run]) -> list[Pair]:
    """Per path, the medians over runs of each side (the ratio printed beside them
    is their quotient; :func:`print_ratios` gives the median of per-run ratios)."""
    medians = []
    for index, first in enumerate(runs[0].pairs):
        pairs = [run.pairs[index] for run in runs]
        medians.append(
            Pair(
                first.name,
                first.base_name,
                _median_row([p.project for p in pairs]),
                _median_row([p.base for p in pairs]),
            )
        )
    return medians


def print_ratios(runs: Sequence[Run]) -> None:
    print("\nproject ÷ base (req/s), each run, and the median:")
    for index, first in enumerate(runs[0].pairs):
        ratios = [run.pairs[index].ratio for run in runs]
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        label = f"{first.name} ÷ {first.base_name}"
        print(f"  {label:<32} {shown}  → {statistics.median(ratios):.2f}")


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
        seeded_id = seed(cluster, SEEDED_ORG)
        assessed_s = assess_all(cluster)
        copied = copy_to_floor(cluster, SEEDED_ORG)
        credentials = {"api_key": api_key(cluster, SEEDED_ORG)}
        print(
            f"seeded {SEEDED_HANDOFFS} handoffs (assessed in {assessed_s:.0f} s), "
            f"{copied} copied to the floor",
            flush=True,
        )
        runs = []
        for run in range(args.runs):
            runs.append(measure(cluster, args, run, seeded_id, credentials))
            print_run(f"run {run + 1}", runs[-1].pairs, runs[-1].storm_ms)
            sys.stdout.flush()
        print_run(
            f"medians of {args.runs} runs",
            median_pairs(runs),
            statistics.median(r.storm_ms for r in runs),
        )
        print_ratios(runs)
        problems = check_creates(cluster)
        errors = sum(p.project.errors + p.base.errors for run in runs for p in run.pairs)
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
        default=set(DEFAULT_PATHS),
        help=f"comma-separated, of: {','.join(PATHS)} (default: {','.join(DEFAULT_PATHS)})",
    )
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    add_prepared_statements_option(parser)
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy record each side of each pair into DIR (collapsed stacks)",
    )
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    if unknown := args.paths - set(PATHS):
        parser.error(f"unknown --paths {sorted(unknown)}; known: {','.join(PATHS)}")
    return args


if __name__ == "__main__":
    sys.exit(main())
