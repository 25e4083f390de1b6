"""Webhook delivery benchmark: deliveries/s per worker and create→delivered latency.

    python -m bench.webhooks [--deliveries 300] [--samples 40] [--pace-ms 50] [--runs 3]
                             [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Run it from the repository root. It starts its own in-memory redis-server on a
free port, a fresh PostgreSQL database and one ``escalations api`` on 127.0.0.1
(private networks allowed for webhooks, so the local receiver may be reached),
and an HTTP receiver in this process on 127.0.0.1 that answers 200 to every
request and notes when each arrived. Then, ``--runs`` times:

Throughput: with no worker running, ``--deliveries`` ``POST /webhooks/{id}/test``
calls each make one delivery (the API's dispatcher enqueues it at once); then
one ``escalations worker --burst`` sends them all. Deliveries/s is
(deliveries - 1) / (first to last arrival at the receiver), so process start-up
is not counted. Every delivery must be ``delivered`` in the log afterwards.

Latency: with a worker waiting, ``--samples`` handoffs are created one at a
time, at most one per ``--pace-ms``, with a subscription to ``handoff_created``.
Each is timed from just before its POST until its delivery arrives at the
receiver: the commit, the dispatcher's enqueue, the worker's pick-up, the
signed POST. The same worker also runs the handoff's assessment (its queue
comes first), as in production with one worker.

Prints one row per run and the median row: deliveries/s, create→delivered
p50 and p99 (nearest rank). Exits 0, or 1 with the error when a delivery is
missing, a process dies or a deadline passes. Everything it started, and the
database, is removed at the end.
"""

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from redis import Redis

from bench.common import DEFAULT_PG_ADMIN_URL, percentile
from shared.auth.tokens import issue_token
from shared.core.models import Role
from testkit.pg import fresh_database
from testkit.procs import (
    Proc,
    api_env,
    base_url,
    escalations_binary,
    free_port,
    redis_url,
    running,
    spawn,
    start_api,
    start_redis,
)
from testkit.samples import handoff_body
from testkit.webhook_receiver import Receiver

ORG = "bench"
DEADLINE_SECONDS = 120.0
POLL_SECONDS = 0.01


class BenchError(RuntimeError):
    pass


@dataclass
class Bench:
    env: dict[str, str]
    http: httpx.Client
    admin: dict[str, str]
    engineer: dict[str, str]
    log_dir: Path
    redis: Redis

    def subscribe(self, url: str, events: list[str] | None = None) -> str:
        body = {"url": url, **({"events": events} if events else {})}
        response = self.http.post("/api/v1/webhooks", json=body, headers=self.admin)
        response.raise_for_status()
        return str(response.json()["id"])

    def delivered(self, webhook_id: str) -> int:
        count, cursor = 0, None
        while True:
            params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
            page = self.http.get(
                f"/api/v1/webhooks/{webhook_id}/deliveries", params=params, headers=self.admin
            ).json()
            count += sum(item["status"] == "delivered" for item in page["items"])
            if not (cursor := page["next_cursor"]):
                return count

    def worker(self, name: str, *options: str) -> Proc:
        argv = [escalations_binary(), "worker", "--name", name, *options]
        return spawn(name, argv, port=0, log_dir=self.log_dir, env=self.env)


@contextmanager
def bench_environment(args: argparse.Namespace) -> Iterator[Bench]:
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="webhook-bench-")))
        database_url = stack.enter_context(fresh_database(args.pg_admin_url))
        redis_proc = stack.enter_context(running(start_redis(free_port(), log_dir=log_dir)))
        secret = secrets.token_urlsafe(32)
        env = api_env(
            database_url=database_url,
            redis_url=redis_url(redis_proc.port),
            jwt_secret=secret,
            webhook_allow_private_networks="true",
            # One org and one receiver: the fairness caps would measure themselves, not a worker.
            webhook_max_in_flight_per_org="10000",
            webhook_max_in_flight_per_host="10000",
        )
        api = stack.enter_context(running(start_api(free_port(), env=env, log_dir=log_dir)))
        yield Bench(
            env=env,
            http=stack.enter_context(httpx.Client(base_url=base_url(api.port), timeout=30.0)),
            admin=_headers(secret, Role.admin),
            engineer=_headers(secret, Role.engineer),
            log_dir=log_dir,
            redis=stack.enter_context(Redis.from_url(redis_url(redis_proc.port), protocol=2)),
        )


def _headers(secret: str, role: Role) -> dict[str, str]:
    token = issue_token(secret=secret, sub=f"{role.value}-1", name=role.value.title(),
                        role=role, org=ORG, ttl=timedelta(hours=2))  # fmt: skip
    return {"Authorization": f"Bearer {token}"}


def wait(check, *, what: str, proc: Proc | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not check():
        if proc is not None and not proc.running and not check():
            raise BenchError(f"{proc.name} exited before {what}:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"no {what} within {DEADLINE_SECONDS:.0f} s")
        time.sleep(POLL_SECONDS)


def measure_throughput(bench: Bench, deliveries: int, run: int) -> float:
    with Receiver() as receiver:
        webhook_id = bench.subscribe(receiver.url(f"/throughput-{run}"))
        for _ in range(deliveries):
            bench.http.post(f"/api/v1/webhooks/{webhook_id}/test", headers=bench.admin)
        wait(lambda: bench.redis.llen("rq:queue:notifications") == deliveries,
             what="every delivery enqueued")  # fmt: skip
        with running(bench.worker(f"bench-burst-{run}", "--burst")) as proc:
            wait(lambda: not proc.running, what="the burst worker's exit")
        arrivals = sorted(request.at for request in receiver.hook_requests())
    if len(arrivals) != deliveries or bench.delivered(webhook_id) != deliveries:
        raise BenchError(f"{len(arrivals)} of {deliveries} deliveries arrived")
    bench.http.patch(f"/api/v1/webhooks/{webhook_id}", json={"enabled": False},
                     headers=bench.admin)  # fmt: skip
    return (deliveries - 1) / (arrivals[-1] - arrivals[0])


def measure_latency(bench: Bench, args: argparse.Namespace, run: int) -> list[float]:
    with Receiver() as receiver, running(bench.worker(f"bench-waiting-{run}")) as worker:
        webhook_id = bench.subscribe(receiver.url(f"/latency-{run}"), ["handoff_created"])
        wait(lambda: bench.redis.sismember("rq:workers", f"rq:worker:bench-waiting-{run}"),
             what="the worker's registration", proc=worker)  # fmt: skip
        samples = []
        for number in range(args.samples):
            started = time.monotonic()
            response = bench.http.post("/api/v1/handoffs", json=handoff_body(
                f"lat-{run}-{number}"), headers=bench.engineer)  # fmt: skip
            response.raise_for_status()
            wait(lambda n=number: len(receiver.hook_requests()) > n, what="the delivery",
                 proc=worker)  # fmt: skip
            samples.append(receiver.hook_requests()[number].at - started)
            time.sleep(max(0.0, args.pace_ms / 1000 - (time.monotonic() - started)))
        bench.http.patch(f"/api/v1/webhooks/{webhook_id}", json={"enabled": False},
                         headers=bench.admin)  # fmt: skip
    return samples


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows = []
    try:
        with bench_environment(args) as bench:
            for run in range(1, args.runs + 1):
                rate = measure_throughput(bench, args.deliveries, run)
                latency = measure_latency(bench, args, run)
                rows.append((rate, percentile(latency, 50), percentile(latency, 99)))
                p50, p99 = rows[-1][1] * 1000, rows[-1][2] * 1000
                print(f"run {run}: {rate:.0f} deliveries/s, create→delivered p50 {p50:.1f} ms,"
                      f" p99 {p99:.1f} ms", flush=True)  # fmt: skip
    except BenchError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    print_table(args, rows)
    return 0


def print_table(args: argparse.Namespace, rows: list[tuple[float, float, float]]) -> None:
    print(f"\n{args.deliveries} deliveries per throughput run, {args.samples} latency samples "
          f"per run, {args.runs} runs; one SimpleWorker, PostgreSQL, 127.0.0.1\n")  # fmt: skip
    print("| run | deliveries/s (one worker) | create→delivered p50 | p99 |")
    print("|---|---|---|---|")
    for index, (rate, p50, p99) in enumerate(rows, 1):
        print(f"| {index} | {rate:.0f} | {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms |")
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    print(f"| **median** | **{medians[0]:.0f}** | **{medians[1] * 1000:.1f} ms** | "
          f"**{medians[2] * 1000:.1f} ms** |")  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=300)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--pace-ms", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    args = parser.parse_args(argv)
    if not (2 <= args.deliveries <= 5000 and 1 <= args.samples <= 1000 and 1 <= args.runs <= 10):
        parser.error("--deliveries 2..5000, --samples 1..1000, --runs 1..10 (bounded on purpose)")
    return args


if __name__ == "__main__":
    sys.exit(main())
