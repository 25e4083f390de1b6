"""SSE fan-out benchmark: event latency, loss and memory per stream, against two floors.

    python -m bench.fanout [--clients 1000,5000] [--events 60] [--interval-ms 40]
                           [--pacing closed|open] [--warmup 5] [--floor-clients 1000]
                           [--raw-messages 1000]
                           [--generators 2] [--connect-concurrency 128] [--no-uvloop]
                           [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
    python -m bench.fanout --relay [bench/relay.py's options]: the outbox relay instead

Run it from the repository root with the project's virtualenv. Everything binds
127.0.0.1. It starts its own in-memory redis-server on a free port, then measures:

  raw pub/sub      ``--raw-messages`` PUBLISHes (one every 2 ms, the size of a real
                   event) to one redis-py subscriber on a thread: publish→receive.
  bare @N          ``bench/bare_sse.py`` in its own process (sse-starlette, one Redis
                   subscription, bounded per-stream queues; no auth, database or
                   replay) with ``--floor-clients`` clients; events are PUBLISHed
                   straight to Redis.
  escalations @N   for each count in ``--clients``: two fresh ``escalations api``
                   replicas on a fresh PostgreSQL database (created, migrated with
                   ``shared.core.migrate.upgrade_to_head`` and dropped by this script),
                   N clients of one org spread evenly over both; events are caused
                   by POST /api/v1/handoffs as an engineer, alternating replicas.

For the two SSE rows, clients are split over ``--generators`` processes
(``bench/sse_clients.py``: raw asyncio protocols on uvloop, connected at most
``--connect-concurrency`` at a time). Once every client has its ``ready``
message, ``--warmup`` unmeasured events are sent and delivered, then
``--events`` measured ones. With ``--pacing closed`` (default) each cause is sent
``--interval-ms`` after every client has the previous event (at most 3 s), so an
event never waits behind the previous one's fan-out and the latency is one
event's own; ``--pacing open`` sends one every ``--interval-ms`` regardless, so a
fan-out slower than the spacing shows up as a growing backlog. Latency is per client per
event: from just before the PUBLISH/POST is sent to the client's read of the
message, both on CLOCK_MONOTONIC (one clock for every process here). Lost is
expected deliveries minus distinct ones received; dup counts repeats.
KiB/stream is (VmRSS with all clients ready − VmRSS before they connected) /
streams on that process, per server process (the mean of the two replicas is
shown; both are printed below). "gen CPU/ev" and "srv CPU/ev" are the CPU time
(user + system) spent per measured event by all load generators and by all
server processes: which side the two cores go to. "ev/s" is the measured
events per second achieved. A second table splits each latency at the moment
this script's own Redis subscriber saw the event: cause→on Redis (for
escalations: the POST, its commit and the outbox relay) and on Redis→delivered
(the fan-out). Load averages are printed too: the machine may be shared.

Prints the table, the ratio of escalations p99 @1000 to the bare floor's p99,
and the goals with PASS/FAIL: p99 @1000 within 1.5x the bare floor; p99 @5000
under 250 ms; at most 50 KiB per stream; nothing lost; and, when 10000 is in
``--clients`` (``--clients 1000,5000,10000``), p99 @10000 at most 500 ms and at
most 40 KiB per stream on either replica. Exits 1 if a goal fails.

Thousands of sockets need file descriptors: a replica or a generator holds one
per client (5,000 each at 10,000 clients), so this script raises its soft
RLIMIT_NOFILE to the hard limit, and every process it starts inherits that. It
stops with an error if the hard limit is too low for the largest row.
Every process it started and the database are removed at the end, also on
errors, Ctrl-C or SIGTERM.
"""

import argparse
import asyncio
import json
import os
import resource
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from bench.common import (
    DEFAULT_PG_ADMIN_URL,
    install_sigterm_handler,
    percentile,
    process_cpu_seconds,
)
from bench.sse_harness import Fleet, bearer_token, fleet
from shared.core import keys
from shared.core.models import Role
from testkit.pg import fresh_database, libpq_dsn
from testkit.procs import (
    Proc,
    api_env,
    base_url,
    free_port,
    redis_url,
    rss_kib,
    running,
    spawn,
    start_api,
    start_redis,
    wait_until,
)
from testkit.samples import fresh_handoff_body

BENCH = Path(__file__).resolve().parent
BARE_CHANNEL = "bench:fanout"  # bench/bare_sse.py's CHANNEL
RAW_CHANNEL = "bench:raw"
RAW_INTERVAL_SECONDS = 0.002
RAW_SWITCH_INTERVAL_SECONDS = 0.0001
REPLICAS = 2
DELIVERY_GRACE_SECONDS = 15.0
PACE_POLL = 0.002
PACE_TIMEOUT = 3.0

GOAL_RATIO = 1.5
GOAL_P99_5000_MS = 250.0
GOAL_KIB_PER_STREAM = 50.0
GOAL_P99_10000_MS = 500.0
GOAL_KIB_PER_STREAM_10000 = 40.0
FD_HEADROOM = 1024  # files, pipes and pool connections beside the sockets


@dataclass
class Row:
    name: str
    clients: int
    latencies_ms: list[float]
    fanout_ms: list[float] = field(default_factory=list)
    publish_ms: list[float] = field(default_factory=list)
    lost: int = 0
    dup: int = 0
    unexpected: int = 0
    closed_early: int = 0
    kib_per_stream: list[float] = field(default_factory=list)
    gen_cpu_ms: float | None = None  # CPU per measured event, all generators
    server_cpu_ms: float | None = None  # CPU per measured event, all server processes
    rate: float | None = None  # measured events per second achieved

    def p(self, pct: float) -> float:
        return percentile(self.latencies_ms, pct) if self.latencies_ms else float("nan")

    @property
    def max_ms(self) -> float:
        return max(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def kib(self) -> float | None:
        if not self.kib_per_stream:
            return None
        return sum(self.kib_per_stream) / len(self.kib_per_stream)


# --- main --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--relay" in argv:  # the outbox relay's latency and events/s instead: bench/relay.py
        from bench import relay

        return relay.main([arg for arg in argv if arg != "--relay"])
    args = parse_args(argv)
    install_sigterm_handler()
    raise_fd_limit(max([*args.clients, args.floor_clients]), generators=args.generators)
    rows: list[Row] = []
    print(f"load average at start: {load_average()}", file=sys.stderr)
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fanout-bench-")))
        redis = stack.enter_context(running(start_redis(free_port(), log_dir=log_dir)))
        rows.append(raw_pubsub_floor(redis.port, messages=args.raw_messages))
        rows.append(bare_floor(args, redis=redis, log_dir=log_dir))
        database_url = stack.enter_context(fresh_database(args.pg_admin_url))
        for clients in args.clients:
            rows.append(
                escalations_level(
                    clients, args, database_url=database_url, redis=redis, log_dir=log_dir
                )
            )
    print(f"load average at end (1, 5, 15 min): {load_average()}")
    print_table(rows)
    return 0 if print_goals(rows) else 1


def raise_fd_limit(clients: int, *, generators: int) -> None:
    """Soft RLIMIT_NOFILE up to the hard limit, for this process and its children
    (replicas and generators): each holds one socket per client it serves."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    per_process = max(clients // REPLICAS, -(-clients // generators)) + FD_HEADROOM
    if hard != resource.RLIM_INFINITY and hard < per_process:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} < {per_process} needed; raise it")
    if soft != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def load_average() -> str:
    """The machine is shared: a busy neighbour shows up here, and in every figure."""
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=_counts, default=[1000, 5000], help="e.g. 1000,5000")
    parser.add_argument("--events", type=_positive, default=60, help="measured events per row")
    parser.add_argument("--interval-ms", type=float, default=40.0, help="spacing of causes")
    parser.add_argument(
        "--pacing",
        choices=["closed", "open"],
        default="closed",
        help="closed: the next cause also waits for the previous event's full delivery; "
        "open: one cause every --interval-ms regardless (measures backlog too)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured events first")
    parser.add_argument("--floor-clients", type=_positive, default=1000)
    parser.add_argument("--raw-messages", type=_positive, default=1000)
    parser.add_argument("--generators", type=_positive, default=2, help="client processes")
    parser.add_argument("--connect-concurrency", type=_positive, default=128)
    parser.add_argument("--no-uvloop", action="store_true", help="generators on asyncio's loop")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _counts(text: str) -> list[int]:
    return [_positive(part) for part in text.split(",") if part.strip()]


# --- floor 1: raw pub/sub ------------------------------------------------------------


def sample_event(seq: int) -> bytes:
    """A message the size and shape of a real ``handoff_created`` event."""
    body = fresh_handoff_body(f"bench-{seq}")
    handoff = {
        "id": str(uuid.uuid4()), "org_id": "bench", "status": "pending",
        "created_by_id": "engineer", "created_by_name": "Bench Engineer",
        "created_at": "2025-01-01T00:00:00.000000Z", "updated_at": None,
        "claimed_by_id": None, "claimed_by_name": None, "claimed_at": None,
        "assessment": None, "assessment_status": "pending", **body,
    }  # fmt: skip
    event = {
        "id": seq, "type": "handoff_created", "handoff_id": handoff["id"], "org_id": "bench",
        "at": "2025-01-01T00:00:00.000000Z", "actor_id": "engineer",
        "actor_name": "Bench Engineer", "handoff": handoff,
    }  # fmt: skip
    return json.dumps(event, separators=(",", ":")).encode()


def raw_pubsub_floor(port: int, *, messages: int) -> Row:
    """PUBLISH→receive to one redis-py subscriber (its own thread and connection)."""
    subscriber = Redis(port=port).pubsub()
    subscriber.subscribe(RAW_CHANNEL)
    confirmation = subscriber.get_message(timeout=5)
    if not confirmation or confirmation["type"] != "subscribe":
        raise RuntimeError(f"no SUBSCRIBE confirmation: {confirmation}")
    received: list[tuple[float, bytes]] = []
    payloads = [sample_event(seq) for seq in range(messages)]
    causes: dict[int, float] = {}
    thread = threading.Thread(target=_receive, args=(subscriber, messages, received))
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(RAW_SWITCH_INTERVAL_SECONDS)  # else a GIL hand-off can add 5 ms
    try:
        thread.start()
        with Redis(port=port) as publisher:
            for seq, payload in enumerate(payloads):
                causes[seq] = time.monotonic()
                publisher.publish(RAW_CHANNEL, payload)
                time.sleep(RAW_INTERVAL_SECONDS)
        thread.join(timeout=DELIVERY_GRACE_SECONDS)
    finally:
        sys.setswitchinterval(switch_interval)
        subscriber.close()
    latencies = [(at - causes[json.loads(data)["id"]]) * 1000 for at, data in received]
    return Row("raw pub/sub", 1, latencies, lost=messages - len(received))


def _receive(subscriber: Any, messages: int, received: list[tuple[float, bytes]]) -> None:
    deadline = time.monotonic() + messages * RAW_INTERVAL_SECONDS * 10 + DELIVERY_GRACE_SECONDS
    while len(received) < messages and time.monotonic() < deadline:
        message = subscriber.get_message(timeout=0.5)
        if message and message["type"] == "message":
            received.append((time.monotonic(), message["data"]))


# --- causes --------------------------------------------------------------------------


class Causer(Protocol):
    async def fire(self) -> str:
        """Cause one event; a key that ``seqs`` can turn into its event id."""
        ...

    def seqs(self, keys: Sequence[str]) -> dict[str, int]: ...


class PublishCauser:
    """PUBLISHes sample events straight to the bare server's channel."""

    def __init__(self, redis: AsyncRedis) -> None:
        self.redis = redis
        self.next_seq = 1

    async def fire(self) -> str:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        await self.redis.publish(BARE_CHANNEL, sample_event(seq))
        return str(seq)

    def seqs(self, keys: Sequence[str]) -> dict[str, int]:
        return {key: int(key) for key in keys}


class CreateCauser:
    """POST /api/v1/handoffs as an engineer, alternating replicas; keys are handoff ids."""

    def __init__(self, clients: list[httpx.AsyncClient], *, database_url: str, org: str) -> None:
        self.clients = clients
        self.database_url = database_url
        self.org = org
        self.fired = 0

    async def fire(self) -> str:
        client = self.clients[self.fired % len(self.clients)]
        self.fired += 1
        response = await client.post("/api/v1/handoffs", json=fresh_handoff_body())
        if response.status_code != 201:
            raise RuntimeError(f"create answered {response.status_code}: {response.text}")
        return str(response.json()["id"])

    def seqs(self, keys: Sequence[str]) -> dict[str, int]:
        query = "SELECT handoff_id, seq FROM events WHERE org_id = %s AND type = 'handoff_created'"
        with psycopg.connect(libpq_dsn(self.database_url)) as connection:
            by_handoff = dict(connection.execute(query, (self.org,)).fetchall())
        return {key: int(by_handoff[key]) for key in keys}


async def fire_paced(
    causer: Causer, count: int, interval_s: float, *, clients_fleet: Fleet | None
) -> dict[str, float]:
    """``count`` causes, the next one ``interval_s`` after the previous, and -- with
    ``clients_fleet`` (closed-loop pacing) -- not before every client has the
    previous event, so no event waits behind the one before it. Returns each key's
    cause time (``time.monotonic()`` just before it was sent)."""
    causes: dict[str, float] = {}
    base = (await clients_fleet.totals())["received"] if clients_fleet else 0
    next_at = time.monotonic()
    for index in range(count):
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        at = time.monotonic()
        causes[await causer.fire()] = at
        if clients_fleet is not None:
            expected = base + clients_fleet.count * (index + 1)
            totals = await clients_fleet.wait_received(expected, PACE_TIMEOUT, poll=PACE_POLL)
            base -= max(0, expected - totals["received"])  # lost ones: don't wait for them again
            next_at = time.monotonic() + interval_s
        else:
            next_at = at + interval_s
    return causes


# --- one SSE row ---------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    name: str
    servers: list[Proc]
    targets: list[str]
    path: str
    token: str | None
    redis_port: int
    channel: str
    org: str


class PublishWatcher:
    """Notes when each of ``org``'s events shows up on the Redis channel (this
    process's own subscription): the split between causing and fanning out."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.seen: dict[int, float] = {}
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        async with AsyncRedis(port=self.setup.redis_port) as redis, redis.pubsub() as pubsub:
            await pubsub.subscribe(self.setup.channel)
            async for message in pubsub.listen():
                at = time.monotonic()
                if message["type"] == "subscribe":
                    self.subscribed.set()
                elif message["type"] == "message":
                    event = json.loads(message["data"])
                    if event.get("org_id") == self.setup.org:
                        self.seen.setdefault(int(event["id"]), at)


async def measure(setup: Setup, causer: Causer, clients: int, args: argparse.Namespace) -> Row:
    """Connect ``clients``, warm up, send the measured events, collect the figures."""
    watcher = PublishWatcher(setup)
    watching = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.subscribed.wait(), 10)
        return await _measure(setup, causer, clients, args, watcher)
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)


async def _measure(
    setup: Setup,
    causer: Causer,
    clients: int,
    args: argparse.Namespace,
    watcher: PublishWatcher,
) -> Row:
    before = {proc.name: rss_kib(proc.popen.pid) for proc in setup.servers}
    async with fleet(
        targets=setup.targets,
        count=clients,
        processes=min(args.generators, clients),
        path=setup.path,
        token=setup.token,
        connect_concurrency=args.connect_concurrency,
        uvloop=not args.no_uvloop,
    ) as clients_fleet:
        await clients_fleet.wait_ready(timeout=30 + clients / 20)
        connected = {proc.name: rss_kib(proc.popen.pid) for proc in setup.servers}
        per_server = clients / len(setup.servers)
        kib = [(connected[name] - before[name]) / per_server for name in before]
        print(
            f"  {setup.name}: RSS KiB before/with "
            + ", ".join(f"{name} {before[name]}/{connected[name]}" for name in before),
            file=sys.stderr,
        )
        await fire_paced(causer, args.warmup, args.interval_ms / 1000, clients_fleet=clients_fleet)
        row = await _measured_events(setup, causer, clients_fleet, args, watcher)
        row.kib_per_stream = kib
        await clients_fleet.command("close")
    return row


async def _measured_events(
    setup: Setup,
    causer: Causer,
    clients_fleet: Fleet,
    args: argparse.Namespace,
    watcher: PublishWatcher,
) -> Row:
    base = (await clients_fleet.totals())["received"]
    await clients_fleet.command("mark")
    cpu_before = {proc.name: process_cpu_seconds([proc.popen.pid]) for proc in setup.servers}
    wall_before = time.monotonic()
    pacer = clients_fleet if args.pacing == "closed" else None
    causes = await fire_paced(causer, args.events, args.interval_ms / 1000, clients_fleet=pacer)
    expected = base + clients_fleet.count * args.events
    totals = await clients_fleet.wait_received(expected, DELIVERY_GRACE_SECONDS)
    wall = time.monotonic() - wall_before
    server_cpu = sum(
        process_cpu_seconds([proc.popen.pid]) - cpu_before[proc.name] for proc in setup.servers
    )
    seqs = causer.seqs(list(causes))
    by_seq = {seqs[key]: at for key, at in causes.items()}
    published = {seq: watcher.seen[seq] for seq in by_seq if seq in watcher.seen}
    times = json.dumps({"causes": by_seq, "published": published})
    results = await clients_fleet.command("results " + times, timeout=120)
    return Row(
        setup.name,
        clients_fleet.count,
        [latency for result in results for latency in result["latencies_ms"]],
        fanout_ms=[latency for result in results for latency in result["fanout_ms"]],
        publish_ms=[(published[seq] - at) * 1000 for seq, at in by_seq.items() if seq in published],
        lost=sum(result["lost"] for result in results),
        dup=sum(result["dup"] for result in results),
        unexpected=sum(result["unexpected"] for result in results),
        closed_early=totals["closed_early"],
        gen_cpu_ms=1000 * sum(result["cpu_s"] for result in results) / args.events,
        server_cpu_ms=1000 * server_cpu / args.events,
        rate=args.events / wall,
    )


# --- floor 2: bare sse-starlette ------------------------------------------------------


def bare_floor(args: argparse.Namespace, *, redis: Proc, log_dir: Path) -> Row:
    port = free_port()
    argv = [
        sys.executable, str(BENCH / "bare_sse.py"),
        "--port", str(port), "--redis-url", redis_url(redis.port),
    ]  # fmt: skip
    with running(spawn(f"bare-sse-{port}", argv, port=port, log_dir=log_dir)) as proc:
        wait_until(lambda: _answers_200(f"{base_url(port)}/healthz"), proc=proc, what="healthz")
        setup = Setup(
            f"bare sse-starlette @{args.floor_clients}",
            [proc],
            [f"127.0.0.1:{port}"],
            "/stream",
            None,
            redis_port=redis.port,
            channel=BARE_CHANNEL,
            org="bench",
        )
        return asyncio.run(_bare(setup, redis.port, args))


async def _bare(setup: Setup, redis_port: int, args: argparse.Namespace) -> Row:
    async with AsyncRedis(port=redis_port) as redis:
        return await measure(setup, PublishCauser(redis), args.floor_clients, args)


def _answers_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


# --- the real thing -------------------------------------------------------------------


def escalations_level(
    clients: int, args: argparse.Namespace, *, database_url: str, redis: Proc, log_dir: Path
) -> Row:
    """Two fresh replicas, ``clients`` streams of one new org, events by POST."""
    secret = secrets.token_urlsafe(32)
    env = api_env(database_url=database_url, redis_url=redis_url(redis.port), jwt_secret=secret)
    org = f"bench-{clients}-{uuid.uuid4().hex[:8]}"
    viewer = bearer_token(secret=secret, org=org, role=Role.senior, sub="viewer")
    engineer = bearer_token(secret=secret, org=org, role=Role.engineer, sub="engineer")
    with ExitStack() as stack:
        replicas = [
            stack.enter_context(running(start_api(free_port(), env=env, log_dir=log_dir)))
            for _ in range(REPLICAS)
        ]
        setup = Setup(
            f"escalations @{clients}",
            replicas,
            [f"127.0.0.1:{proc.port}" for proc in replicas],
            "/api/v1/events",
            viewer,
            redis_port=redis.port,
            channel=keys.EVENTS_CHANNEL,
            org=org,
        )
        try:
            return asyncio.run(
                _escalations(
                    setup, clients, args, database_url=database_url, org=org, token=engineer
                )
            )
        except Exception:
            for proc in replicas:  # the logs go with the temporary directory
                print(f"--- {proc.name} log (tail)\n{proc.log_text()[-4000:]}", file=sys.stderr)
            raise


async def _escalations(
    setup: Setup,
    clients: int,
    args: argparse.Namespace,
    *,
    database_url: str,
    org: str,
    token: str,
) -> Row:
    headers = {"Authorization": f"Bearer {token}"}
    http = [
        httpx.AsyncClient(base_url=f"http://{target}", headers=headers, timeout=30)
        for target in setup.targets
    ]
    try:
        causer = CreateCauser(http, database_url=database_url, org=org)
        return await measure(setup, causer, clients, args)
    finally:
        for client in http:
            await client.aclose()


# --- report ----------------------------------------------------------------------------


def print_table(rows: Sequence[Row]) -> None:
    header = (
        f"{'':<26} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'lost':>6} "
        f"{'dup':>5} {'KiB/stream':>10} {'gen CPU/ev':>10} {'srv CPU/ev':>10} {'ev/s':>5}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        kib = f"{row.kib:.1f}" if row.kib is not None else "-"
        gen = f"{row.gen_cpu_ms:.1f} ms" if row.gen_cpu_ms is not None else "-"
        srv = f"{row.server_cpu_ms:.1f} ms" if row.server_cpu_ms is not None else "-"
        rate = f"{row.rate:.1f}" if row.rate is not None else "-"
        print(
            f"{row.name:<26} {row.clients:>7} {row.p(50):>8.2f} {row.p(99):>8.2f} "
            f"{row.max_ms:>8.2f} {row.lost:>6} {row.dup:>5} {kib:>10} {gen:>10} {srv:>10} "
            f"{rate:>5}"
        )
    print_split(rows)
    for row in rows:
        if len(row.kib_per_stream) > 1:
            each = ", ".join(f"{kib:.1f}" for kib in row.kib_per_stream)
            print(f"  {row.name}: KiB/stream per replica {each}")
        if row.unexpected or row.closed_early:
            print(f"  {row.name}: {row.unexpected} unexpected, {row.closed_early} closed early")


def print_split(rows: Sequence[Row]) -> None:
    """Where the time goes: cause → seen on Redis (for escalations: the POST, its
    commit and the outbox relay) and seen on Redis → delivered (the fan-out)."""
    split = [row for row in rows if row.fanout_ms]
    if not split:
        return
    print("\nsplit (p50 / p99 ms)        cause→on Redis   on Redis→delivered")
    for row in split:
        cause = f"{percentile(row.publish_ms, 50):.2f} / {percentile(row.publish_ms, 99):.2f}"
        fan = f"{percentile(row.fanout_ms, 50):.2f} / {percentile(row.fanout_ms, 99):.2f}"
        print(f"{row.name:<26} {cause:>17} {fan:>20}")


def print_goals(rows: Sequence[Row]) -> bool:
    """Prints each goal with PASS/FAIL (n/a when its row was not run); all passed?"""
    bare = next((row for row in rows if row.name.startswith("bare")), None)
    at = {row.clients: row for row in rows if row.name.startswith("escalations")}
    goals: list[tuple[str, bool | None, str]] = []
    if bare and 1000 in at:
        ratio = at[1000].p(99) / bare.p(99)
        print(f"\nescalations p99 @1000 / bare floor p99: {ratio:.2f}x")
        goals.append((f"p99 @1000 within {GOAL_RATIO}x the bare floor", ratio <= GOAL_RATIO,
                      f"{ratio:.2f}x"))  # fmt: skip
    else:
        goals.append((f"p99 @1000 within {GOAL_RATIO}x the bare floor", None, "not run"))
    p99_5000 = at[5000].p(99) if 5000 in at else None
    goals.append((
        f"p99 @5000 under {GOAL_P99_5000_MS:.0f} ms",
        None if p99_5000 is None else p99_5000 < GOAL_P99_5000_MS,
        "not run" if p99_5000 is None else f"{p99_5000:.1f} ms",
    ))  # fmt: skip
    worst_kib = max((kib for row in at.values() for kib in row.kib_per_stream), default=None)
    goals.append((
        f"<= {GOAL_KIB_PER_STREAM:.0f} KiB per stream",
        None if worst_kib is None else worst_kib <= GOAL_KIB_PER_STREAM,
        "not run" if worst_kib is None else f"worst replica {worst_kib:.1f} KiB",
    ))  # fmt: skip
    if 10000 in at:
        p99, worst = at[10000].p(99), max(at[10000].kib_per_stream)
        goals.append((
            f"p99 @10000 at most {GOAL_P99_10000_MS:.0f} ms",
            p99 <= GOAL_P99_10000_MS,
            f"{p99:.1f} ms",
        ))  # fmt: skip
        goals.append((
            f"<= {GOAL_KIB_PER_STREAM_10000:.0f} KiB per stream @10000",
            worst <= GOAL_KIB_PER_STREAM_10000,
            f"worst replica {worst:.1f} KiB",
        ))  # fmt: skip
    lost = sum(row.lost for row in rows if row.name != "raw pub/sub")
    dup = sum(row.dup for row in rows)
    goals.append(("0 lost", lost == 0, f"{lost} lost, {dup} dup"))
    print("\ngoals:")
    for text, passed, detail in goals:
        verdict = "n/a " if passed is None else ("PASS" if passed else "FAIL")
        print(f"  {verdict}  {text:<40} {detail}")
    return all(passed is not False for _, passed, _ in goals)


if __name__ == "__main__":
    sys.exit(main())
