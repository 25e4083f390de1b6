"""Chaos soak: two API replicas, two workers, real Redis and PostgreSQL, users
of several orgs and ~200 SSE clients, under faults; then invariants checked.

    python -m bench.soak [--seconds 300] [--clients 200] [--orgs 4] [--failure-rate 0.2]
                         [--replay-limit 100] [--settle-seconds 60] [--seed N]
                         [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Run from the repository root with the project's virtualenv. Everything binds
127.0.0.1: a private redis-server on a free port, a fresh PostgreSQL database
(migrated, dropped at the end), ``testkit/openai_stub.py`` in ``flaky`` mode
(``--failure-rate`` of the calls answer 500 or a malformed completion), two
``escalations api`` replicas and two ``escalations worker`` processes with the
``openai`` assessor against the stub.

Routing: every org but the last has a team (two seniors, owning ``kubernetes``)
and a policy whose levels move during the soak: the domain's team for 2 s, then
all seniors in assign mode for 3 s, looped once (``soak_users.POLICY``); handoffs
are of ``kubernetes`` or ``networking``. The last org keeps the default (no
moves). Workers sweep every second.

Load (``bench/soak_users.py``), for ``--seconds``: per org 3 engineers, 5
seniors and an admin, a request every 1-5 s each: creates (30 % replayed with
their ``Idempotency-Key`` on the other replica), claims (every claim is a race of
2-5 seniors over both replicas at once), releases, resolves, cancels, assessment
retries, queue and analytics reads. ``--clients`` SSE clients
(``bench/soak_sse.py``) spread over the orgs and both replicas; each reconnects
now and then with ``Last-Event-ID`` to either replica, some after staying away
long enough to fall past ``--replay-limit`` (the replicas'
ESCALATIONS_EVENT_REPLAY_LIMIT).

Faults (times from the start of the load; a 60 s run has each once):
  worker    SIGKILL of the oldest worker's own process every 30 s (none within 3 s
            of the Redis outage), and a new worker started at once
  replica   SIGKILL of replica 1 at max(8, 0.2 x seconds) s, restarted on its port 5 s later
  redis     redis-server killed at 0.5 x seconds + 5 s, a new empty one on the same
            port 15 s later

Webhooks (``bench/soak_webhooks.py``): each org subscribes a quick receiver to
``handoff_created``; a noisy org outside the load has 20 webhooks to a receiver
that never answers, one to a receiver that fails every try, and creates 50
handoffs over the run.

Then: wait (up to ``--settle-seconds``) for no assessment pending, for every
``handoff_created`` of the load's orgs at its receiver, and for every
stream to be at its org's last event; check and print the invariants (see
``bench/soak_checks.py``), RSS of each replica before and after, the status
counts per action. Exits 1 when an invariant fails; one of them is that no API
replica or worker exited unless the soak stopped or killed it. Every process and the
database are removed at the end, also on errors, Ctrl-C or SIGTERM.
"""

import argparse
import asyncio
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench import soak_checks as checks
from bench.common import DEFAULT_PG_ADMIN_URL, install_sigterm_handler
from bench.soak_cluster import ORPHAN_GRACE_SECONDS, Cluster
from bench.soak_escalations import check_escalations
from bench.soak_sse import StreamClient
from bench.soak_users import Load, make_orgs, set_policies
from bench.soak_webhooks import Webhooks
from testkit.pg import fresh_database
from testkit.procs import rss_kib

WORKER_KILL_EVERY_SECONDS = 30.0
REPLICA_DOWN_SECONDS = 5.0
REDIS_DOWN_SECONDS = 15.0
FAULT_GUARD_SECONDS = 3.0
WORKER_START_ROOM_SECONDS = 12.0
STREAMS_READY_SECONDS = 60.0
STREAMS_CATCH_UP_SECONDS = 30.0
POLL_SECONDS = 0.5
#: After a failure, at most this many error records of each process, cut to this length.
ERROR_LINES = 5
ERROR_LINE_CHARS = 4000
#: The workers' retry policy: 3 tries, 2 s then 5 s apart (the defaults wait 85 s);
#: maintenance (the level sweep among it) every second, as the policy's levels are 2-3 s.
WORKER_SETTINGS = {
    "assessment_retries": "2",
    "assessment_retry_intervals_seconds": "[2, 5]",
    "llm_timeout_seconds": "10",
    "maintenance_interval_seconds": "1",
}


@dataclass(frozen=True)
class Fault:
    at: float
    kind: str


def fault_plan(seconds: float) -> list[Fault]:
    """Worker kills every 30 s; the replica kill at a fifth of the run; the Redis
    outage from mid-run, but at least ``WORKER_START_ROOM_SECONDS`` after a worker
    kill (its replacement must register first) and with no kill during it."""
    kills = [
        WORKER_KILL_EVERY_SECONDS * n
        for n in range(1, int(seconds // WORKER_KILL_EVERY_SECONDS) + 1)
        if WORKER_KILL_EVERY_SECONDS * n <= seconds - 5
    ]
    redis_at = 0.5 * seconds + 5
    earlier = [at for at in kills if at <= redis_at]
    if earlier:
        redis_at = max(redis_at, earlier[-1] + WORKER_START_ROOM_SECONDS)
    redis_end = redis_at + REDIS_DOWN_SECONDS + FAULT_GUARD_SECONDS
    plan = [Fault(max(8.0, 0.2 * seconds), "replica"), Fault(redis_at, "redis")]
    plan += [Fault(at, "worker") for at in kills if not redis_at <= at < redis_end]
    return sorted(plan, key=lambda fault: fault.at)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        database_url = stack.enter_context(fresh_database(args.pg_admin_url, prefix="soak"))
        cluster = Cluster(
            log_dir=log_dir,
            database_url=database_url,
            secret=secrets.token_hex(32),
            replay_limit=args.replay_limit,
            settings=WORKER_SETTINGS,
        )
        stack.callback(cluster.stop)
        cluster.start(replicas=2, workers=2, failure_rate=args.failure_rate)
        ok = asyncio.run(Soak(cluster, args).run())
        if not ok:
            _report_logs(cluster, log_dir)
    return 0 if ok else 1


def _report_logs(cluster: Cluster, log_dir: Path) -> None:
    """After a failure: keep every process log (the run's folder is removed), and
    print each replica's error records (a worker's are mostly the stub's planned
    failures) and each process's last lines."""
    kept = Path(tempfile.mkdtemp(prefix="soak-logs-"))
    shutil.copytree(log_dir, kept, dirs_exist_ok=True)
    print(f"\nprocess logs kept in {kept}; errors and last lines of each:", file=sys.stderr)
    for proc in [*cluster.replicas, *cluster.workers, *cluster.retired]:
        lines = proc.log_text().splitlines() if proc.name.startswith("api-") else []
        errors = [line for line in lines if '"level": "error"' in line]
        print(f"--- {proc.name}", file=sys.stderr)
        for line in errors[:ERROR_LINES]:
            print(line[:ERROR_LINE_CHARS], file=sys.stderr)
        print(f"... last lines:\n{proc.log_tail(1500)}", file=sys.stderr)


class Soak:
    def __init__(self, cluster: Cluster, args: argparse.Namespace) -> None:
        self.cluster = cluster
        self.args = args
        self.rng = random.Random(args.seed)
        ttl = timedelta(seconds=args.seconds + 600)
        self.orgs = make_orgs(args.orgs, secret=cluster.secret, ttl=ttl)
        self.ports = [replica.port for replica in cluster.replicas]
        self.clients = [
            StreamClient(
                index,
                org=self.orgs[index % len(self.orgs)].name,
                token=self._stream_token(index),
                ports=self.ports,
                rng=random.Random(self.rng.random()),
            )
            for index in range(args.clients)
        ]
        self.webhooks = Webhooks(self.orgs, secret=cluster.secret, ttl=ttl)
        self.fault_log: list[str] = []
        self.fault_errors: list[str] = []
        self.t0 = 0.0

    def _stream_token(self, index: int) -> str:
        org = self.orgs[index % len(self.orgs)]
        return org.users[(index // len(self.orgs)) % len(org.users)].token

    async def run(self) -> bool:
        try:
            return await self._run()
        finally:
            self.webhooks.close()

    async def _run(self) -> bool:
        await set_policies(self.orgs, url=self.cluster.urls[0])
        await self.webhooks.subscribe(self.cluster.urls[0])
        stop = asyncio.Event()
        streams = [asyncio.create_task(client.run(stop)) for client in self.clients]
        await self._until(
            lambda: all(c.cursor is not None for c in self.clients), STREAMS_READY_SECONDS
        )
        rss_before = {r.name: rss_kib(r.popen.pid) for r in self.cluster.replicas}
        self.t0 = time.monotonic()
        load = Load(self.orgs, urls=self.cluster.urls, seconds=self.args.seconds, rng=self.rng)
        plan = fault_plan(self.args.seconds)
        noise = self.webhooks.run(urls=self.cluster.urls, seconds=self.args.seconds)
        await asyncio.gather(load.run(), noise, *(self._fault(fault) for fault in plan))
        load_ended = time.monotonic()
        for client in self.clients:
            client.settling.set()
        faults_ended = max(w.end or load_ended for w in self.cluster.windows)
        quiet = max(load_ended, faults_ended)
        seen: set[str] = set()  # pending at some poll
        settled_at: dict[str, float] = {}  # when each of those was seen settled, from quiet

        def settled() -> bool:
            pending = checks.pending_assessments(self.cluster.database_url)
            now = time.monotonic()
            for handoff_id in seen - pending:
                settled_at.setdefault(handoff_id, now - quiet)
            seen.update(pending)
            return not pending

        done = await self._until(settled, self.args.settle_seconds)
        settled_after = None if done is None else max(0.0, done - quiet)
        slowest = max(settled_at.items(), key=lambda item: item[1], default=None)
        await self._until(
            lambda: self.webhooks.all_arrived(self.cluster.database_url), self.args.settle_seconds
        )
        final = await self._streams_caught_up()
        stop.set()
        await asyncio.gather(*streams)
        rss_after = {r.name: rss_kib(r.popen.pid) for r in self.cluster.replicas}
        exits = self.cluster.note_exits()
        orphans = self.cluster.orphans()
        snapshot = checks.read_snapshot(self.cluster.database_url)
        results = [
            checks.Check(
                "every fault done, every process back",
                not self.fault_errors,
                f"{len(self.fault_log)} faults as planned",
                self.fault_errors,
            ),
            checks.check_handoffs(load, snapshot),
            check_escalations(
                snapshot,
                assignable={o.name: {u.id for u in [*o.seniors, *o.admins]} for o in self.orgs},
            ),
            checks.check_assessments(
                snapshot,
                settled_after=settled_after,
                bound=self.args.settle_seconds,
                load_to_faults_end=faults_ended - load_ended,
                slowest=slowest,
            ),
            checks.check_races(load.races, self.cluster.windows),
            checks.check_streams(
                self.clients, snapshot, final_seqs=final, replay_limit=self.args.replay_limit
            ),
            checks.check_stream_endings(self.clients, self.cluster.windows, self.ports),
            checks.check_answers(load.answers, self.cluster.windows, self.ports),
            checks.check_processes(exits, watched=self._watched()),
            self.webhooks.check(self.cluster.database_url, self.cluster.windows),
            checks.Check(
                "SIGKILLed workers leave no process running",
                not self.cluster.outlived and not orphans,
                f"{self.cluster.workers_killed} workers killed; "
                f"{len(self.cluster.left_behind)} processes left at the kills, "
                f"{len(self.cluster.outlived)} of them running {ORPHAN_GRACE_SECONDS:.0f} s "
                f"later, {len(orphans)} at the end",
                [
                    f"pid {pid} (group {pgid}) outlived its worker"
                    for pid, pgid in self.cluster.outlived
                ],
            ),
        ]
        self._report(load, rss_before, rss_after)
        return checks.print_checks(results)

    def _watched(self) -> int:
        """Replicas and workers started: those running now and those the soak killed."""
        cluster = self.cluster
        return len(cluster.replicas) + len(cluster.workers) + len(cluster.retired)

    async def _fault(self, fault: Fault) -> None:
        await asyncio.sleep(max(0.0, self.t0 + fault.at - time.monotonic()))
        began = time.monotonic() - self.t0
        try:
            what = await self._do(fault)
        except Exception as exc:  # a process that did not come back: a finding, reported
            what = f"FAILED: {exc!r}"[:2000]
            self.fault_errors.append(f"{fault.kind} at {began:.1f} s: {exc!r}"[:2000])
        ended = time.monotonic() - self.t0
        self.fault_log.append(f"  {began:6.1f}-{ended:6.1f} s  {fault.kind:<8} {what}")

    async def _do(self, fault: Fault) -> str:
        if fault.kind == "worker":
            killed, started = await asyncio.to_thread(self.cluster.kill_worker)
            return f"SIGKILL {killed}, started {started}"
        elif fault.kind == "replica":
            name = self.cluster.replicas[1].name
            await asyncio.to_thread(
                self.cluster.kill_replica, 1, down_seconds=REPLICA_DOWN_SECONDS, sleep=time.sleep
            )
            return f"SIGKILL {name}, restarted on its port"
        await asyncio.to_thread(
            self.cluster.redis_outage, down_seconds=REDIS_DOWN_SECONDS, sleep=time.sleep
        )
        return "redis-server killed, a new empty one on its port"

    async def _until(self, check, timeout: float) -> float | None:  # type: ignore[no-untyped-def]
        """Poll ``check`` (run in a thread) until true; the time it became true, or None."""
        deadline = time.monotonic() + timeout
        while True:
            if await asyncio.to_thread(check):
                return time.monotonic()
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(POLL_SECONDS)

    async def _streams_caught_up(self) -> dict[str, int]:
        """Wait until every client is connected at its org's last event; the org
        last events it was checked against (the latest read, on the deadline)."""
        seen: dict[str, int] = {}

        def caught_up() -> bool:
            seen.clear()
            seen.update(checks.latest_seqs(self.cluster.database_url))
            return all(c.connected and c.cursor == seen.get(c.org, 0) for c in self.clients)

        await self._until(caught_up, STREAMS_CATCH_UP_SECONDS)
        return dict(seen)

    def _report(self, load: Load, before: dict[str, int], after: dict[str, int]) -> None:
        args = self.args
        print(
            f"soak: {args.seconds:.0f} s, {args.orgs} orgs x 9 users, {args.clients} SSE clients, "
            f"stub failing {args.failure_rate:.0%} of calls, replay limit {args.replay_limit}, "
            f"seed {args.seed}"
        )
        routed = [org.name for org in self.orgs if org.has_policy]
        print(f"routing: soak_users.POLICY in {', '.join(routed)}; the default in the others")
        print("faults (seconds from the start of the load):")
        print("\n".join(self.fault_log))
        print("replica RSS (MiB, VmRSS from /proc):")
        for name, kib in before.items():
            killed = [r for r in self.cluster.retired if r.name == name]
            note = (
                " (this process was SIGKILLed; the figure after is its successor's)"
                if killed
                else ""
            )
            print(f"  {name}: before {kib / 1024:.1f}, after {after.get(name, 0) / 1024:.1f}{note}")
        print("answers per action:")
        print("\n".join(checks.status_table(load.answers)))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the load")
    parser.add_argument("--clients", type=int, default=200, help="SSE clients")
    parser.add_argument("--orgs", type=int, default=4)
    parser.add_argument("--failure-rate", type=float, default=0.2, help="stub calls that fail")
    parser.add_argument("--replay-limit", type=int, default=100, help="EVENT_REPLAY_LIMIT")
    parser.add_argument(
        "--settle-seconds", type=float, default=60.0, help="bound for no assessment pending"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    if args.seconds < 30:
        parser.error("--seconds must be at least 30 (each fault needs room)")
    return args


if __name__ == "__main__":
    sys.exit(main())
