"""Outbox relay benchmark: create → event on Redis, and events/s relayed.

    python -m bench.relay [--runs 3] [--creates 100] [--rate 10] [--orgs 16]
                          [--events-per-org 500] [--processes 1,2]
                          [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
    python -m bench.fanout --relay [the same options]

Run it from the repository root with the project's virtualenv. It starts its own
redis-server on a free port and a fresh PostgreSQL database (migrated, dropped at
the end). Each run measures, and the table shows medians over ``--runs``:

  bare PUBLISH       ``--creates`` PUBLISHes of a real event's JSON, ``--rate`` per
                     second: publish → the subscriber (the floor). The subscriber
                     is a redis-py client in a process of its own.
  create → Redis     ``--creates`` creates at ``--rate`` per second, each
                     ``shared.handoffs.lifecycle.create_handoff`` in its own session, in
                     this process with the outbox started as an API process
                     starts it (no HTTP: the relay, not the request path, is
                     measured). From just before the call to the subscriber's
                     read of the event; "commit → Redis" starts at the create's
                     commit instead (when the committing thread hands the outbox
                     its events, right after the commit, on either create path).
  relay N procs      ``--orgs`` orgs × ``--events-per-org`` unpublished events
                     (copies of a real one), then N fresh processes each run
                     one ``EventRelay.relay_pending()`` sweep from a common
                     start: events / (last finish − start). Every event must be
                     published at the end.

Timestamps are CLOCK_MONOTONIC, one clock for every process here. The load
average is printed: the machine may be shared.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import text

from bench.common import DEFAULT_PG_ADMIN_URL, percentile
from shared.auth.tokens import Principal
from shared.core import keys
from shared.core.db import make_engine, session_scope
from shared.core.models import Role
from shared.core.redis_client import make_redis
from shared.core.settings import Settings
from shared.events.outbox import Outbox
from shared.events.relay import EventRelay
from shared.handoffs.lifecycle import create_handoff
from shared.handoffs.models import HandoffCreate
from testkit.pg import fresh_database
from testkit.procs import free_port, running, start_redis
from testkit.samples import handoff_body


class TimedOutbox(Outbox):
    """Notes when the committing thread hands it a commit's events: right after
    the commit, on either create path (a session's ``after_commit``, or the one
    statement's ``committed_outside_session``)."""

    committed_at = 0.0

    def committed(self, events: Any, orgs: Any = (), *, deliveries: bool = False) -> None:
        if events:
            self.committed_at = time.monotonic()
        super().committed(events, orgs, deliveries=deliveries)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return relay_child(*args.child)
    if args.subscribe:
        return subscriber_child(args.subscribe)
    print(f"load average at start: {load_average()}", file=sys.stderr)
    runs: list[dict[str, float]] = []
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="relay-bench-")))
        redis_proc = stack.enter_context(running(start_redis(free_port(), log_dir=log_dir)))
        redis_url = f"redis://127.0.0.1:{redis_proc.port}/0"
        database_url = stack.enter_context(fresh_database(args.pg_admin_url, prefix="relay_bench"))
        for run in range(args.runs):
            runs.append(one_run(run, args, database_url=database_url, redis_url=redis_url))
            print(f"run {run + 1}: {json.dumps(runs[-1])}", file=sys.stderr)
    print(f"load average at end (1, 5, 15 min): {load_average()}")
    print_table(runs, args)
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--creates", type=int, default=100, help="measured creates per run")
    parser.add_argument("--rate", type=float, default=10.0, help="creates per second")
    parser.add_argument("--orgs", type=int, default=16)
    parser.add_argument("--events-per-org", type=int, default=2000)
    parser.add_argument("--processes", default="1,2", help="relay process counts, e.g. 1,2")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--subscribe", metavar="REDIS_URL", help=argparse.SUPPRESS)
    parser.add_argument(
        "--child", nargs=2, metavar=("DATABASE_URL", "REDIS_URL"), help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def load_average() -> str:
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def one_run(
    run: int, args: argparse.Namespace, *, database_url: str, redis_url: str
) -> dict[str, float]:
    figures: dict[str, float] = {}
    engine = make_engine(database_url)
    redis = make_redis(redis_url)
    settings = Settings(
        database_url=database_url, redis_url=redis_url, jwt_secret="bench-" + "x" * 40
    )
    try:
        with Subscriber(redis_url) as subscriber:
            figures |= bare_publish(redis, subscriber, args)
            figures |= create_to_redis(run, engine, redis, settings, subscriber, args)
        for processes in parse_counts(args.processes):
            prefill(engine, run=run, orgs=args.orgs, per_org=args.events_per_org)
            figures[f"relay {processes}p ev/s"] = relay_throughput(
                processes, database_url, redis_url
            )
            assert unpublished(engine) == 0, "a sweep left events unpublished"
    finally:
        redis.close()
        engine.dispose()
    return figures


def parse_counts(text_value: str) -> list[int]:
    return [int(part) for part in text_value.split(",") if part]


class Subscriber:
    """A redis-py subscriber to the events channel in its own process (so the
    creating thread here never delays its clock reads): (receive time, the
    message's handoff ``session_id``)."""

    def __init__(self, redis_url: str) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "bench.relay", "--subscribe", redis_url],  # cwd: the root
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._child.stdout is not None
        self._stdout = self._child.stdout
        if self._stdout.readline().strip() != "ready":
            raise RuntimeError("the subscriber did not start")

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *_exc: object) -> None:
        self._child.kill()
        self._child.wait()

    def wait_for(self, count: int) -> list[tuple[float, str]]:
        """The next ``count`` messages (blocks; the caller knows they were sent)."""
        received = []
        for _ in range(count):
            at, session_id = self._stdout.readline().split()
            received.append((float(at), session_id))
        return received


def subscriber_child(redis_url: str) -> int:
    pubsub = make_redis(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.EVENTS_CHANNEL)
    pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    print("ready", flush=True)
    while True:
        message = pubsub.get_message(timeout=1.0)
        if message is not None:
            at = time.monotonic()
            print(at, json.loads(message["data"])["handoff"]["session_id"], flush=True)


def paced(count: int, rate: float) -> Iterator[int]:
    """0..count-1, the i-th yielded at start + i / rate."""
    start = time.monotonic()
    for index in range(count):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield index


def bare_publish(
    redis: Redis, subscriber: Subscriber, args: argparse.Namespace
) -> dict[str, float]:
    sent: dict[str, float] = {}
    for index in paced(args.creates, args.rate):
        payload = json.dumps({"id": index, "handoff": handoff_body(f"floor-{index}")})
        sent[f"floor-{index}"] = time.monotonic()
        redis.publish(keys.EVENTS_CHANNEL, payload)
    latencies = [(got - sent[key]) * 1000 for got, key in subscriber.wait_for(len(sent))]
    return {"bare p50": percentile(latencies, 50), "bare p99": percentile(latencies, 99)}


def create_to_redis(
    run: int,
    engine: Any,
    redis: Redis,
    settings: Settings,
    subscriber: Subscriber,
    args: argparse.Namespace,
) -> dict[str, float]:
    principal = Principal(user_id="u-1", name="Bench", role=Role.engineer, org_id=f"latency-{run}")
    started: dict[str, float] = {}
    outbox = TimedOutbox(engine=engine, redis=redis, settings=settings)
    outbox.start()
    try:
        commit_at: dict[str, float] = {}
        for index in paced(args.creates, args.rate):
            session_id = f"bench-{run}-{index}"
            body = HandoffCreate.model_validate(handoff_body(session_id))
            with session_scope(engine) as session:
                started[session_id] = time.monotonic()
                create_handoff(
                    session=session, principal=principal, body=body, claim_sla_seconds=300
                )
                commit_at[session_id] = outbox.committed_at
        messages = subscriber.wait_for(args.creates)
    finally:
        outbox.stop()
    from_call, from_commit = [], []
    for received_at, session_id in messages:
        from_call.append((received_at - started[session_id]) * 1000)
        from_commit.append((received_at - commit_at[session_id]) * 1000)
    return {
        "create p50": percentile(from_call, 50),
        "create p99": percentile(from_call, 99),
        "commit p50": percentile(from_commit, 50),
        "commit p99": percentile(from_commit, 99),
    }


def prefill(engine: Any, *, run: int, orgs: int, per_org: int) -> None:
    """``orgs`` × ``per_org`` unpublished events: one real create per org, copied."""
    with session_scope(engine) as session:
        session.execute(text("UPDATE events SET published_at = now()"))
        session.commit()
    prefix = f"sweep-{run}-{time.monotonic_ns()}"
    for org in range(orgs):
        principal = Principal(
            user_id="u-1", name="Bench", role=Role.engineer, org_id=f"{prefix}-{org}"
        )
        body = HandoffCreate.model_validate(handoff_body(f"{prefix}-{org}"))
        with session_scope(engine) as session:
            create_handoff(session=session, principal=principal, body=body, claim_sla_seconds=300)
    copies = text(
        "INSERT INTO events (org_id, seq, type, handoff_id, actor_id, actor_name, at, handoff,"
        " published_at, request_id, data)"
        " SELECT e.org_id, e.seq + g, e.type, e.handoff_id, e.actor_id, e.actor_name, e.at,"
        " e.handoff, NULL, e.request_id, e.data"
        " FROM events e CROSS JOIN generate_series(1, :copies) AS g"
        " WHERE e.org_id LIKE :prefix ORDER BY e.org_id, g"
    )
    with session_scope(engine) as session:
        session.execute(copies, {"copies": per_org - 1, "prefix": f"{prefix}-%"})
        session.commit()


def unpublished(engine: Any) -> int:
    with session_scope(engine) as session:
        return int(
            session.execute(
                text("SELECT count(*) FROM events WHERE published_at IS NULL")
            ).scalar_one()
        )


def relay_throughput(processes: int, database_url: str, redis_url: str) -> float:
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.relay", "--child", database_url, redis_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [json.loads(child.communicate(timeout=120)[0]) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    start = min(result["start"] for result in results)
    end = max(result["end"] for result in results)
    return sum(result["published"] for result in results) / (end - start)


def relay_child(database_url: str, redis_url: str) -> int:
    """One relay process: warm up, wait for "go", run one sweep, report."""
    engine = make_engine(database_url)
    redis = make_redis(redis_url)
    with session_scope(engine) as session:
        session.execute(text("SELECT 1"))
    redis.ping()
    relay = EventRelay(engine=engine, redis=redis)
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.monotonic()
    published = relay.relay_pending()
    print(json.dumps({"start": start, "end": time.monotonic(), "published": published}), flush=True)
    return 0


COLUMNS = (
    ("bare PUBLISH → Redis p50 / p99 ms", "bare p50", "bare p99"),
    ("create → on Redis p50 / p99 ms", "create p50", "create p99"),
    ("commit → on Redis p50 / p99 ms", "commit p50", "commit p99"),
)


def print_table(runs: list[dict[str, float]], args: argparse.Namespace) -> None:
    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    print(
        f"\nmedians of {len(runs)} runs; {args.creates} creates at {args.rate:g}/s;"
        f" {args.orgs} orgs × {args.events_per_org} events"
    )
    print(f"{'row':<36} {'figure':>18}")
    for label, p50, p99 in COLUMNS:
        print(f"{label:<36} {median(p50):>8.2f} / {median(p99):>7.2f}")
    one = None
    for processes in parse_counts(args.processes):
        rate = median(f"relay {processes}p ev/s")
        one = one or rate
        print(
            f"{f'relay, {processes} process(es), events/s':<36} {rate:>8.0f}  ({rate / one:.2f}x)"
        )


if __name__ == "__main__":
    sys.exit(main())
