"""Assessment-worker benchmark: which RQ worker class runs the assessment job best.

    python -m bench.assessments [--jobs 40] [--samples 40] [--warmup 3] [--runs 3]
                                [--pace-ms 50] [--no-pool] [--kinds trivial,simple]
                                [--pairs 6] [--warmup-pairs 1] [--pair-jobs 100]
                                [--profile DIR]
                                [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Run it from the repository root. It starts its own in-memory redis-server on a
free port, creates a fresh PostgreSQL database (through psycopg on the admin
URL's database, migrated with ``shared.core.migrate.upgrade_to_head``) and one
``escalations api`` on 127.0.0.1, with the default ``heuristic`` assessor. Then,
``--runs`` times, for each worker kind in turn:

  trivial ``escalations worker --worker-class simple`` running a no-op job
          (bench/trivial_job.py) enqueued on the same queue with the same options
          as an assessment: RQ's own per-job floor, measured in the same run
  simple  ``escalations worker --worker-class simple`` (RQ ``SimpleWorker``, no fork)
  fork    ``escalations worker --worker-class fork``   (RQ ``Worker``, a fork per job)
  spawn   ``escalations worker --worker-class spawn``  (RQ ``SpawnWorker``, an interpreter per job;
          about a second per job, so it runs a tenth of --jobs and --samples)
  pool    ``rq worker-pool -n 2 -w rq.worker.SimpleWorker`` (two processes; skipped with --no-pool)

Throughput: with no worker running, ``--jobs`` handoffs are created through the
API (each enqueues its assessment job), then the worker starts with ``--burst``.
Assessments/s is (jobs - 1) / (first to last ``handoff_assessment_ready``
event), read from the events' timestamps after the worker exits, so process
start-up is not counted and nothing polls while the worker runs. The trivial
job has no event: its rate is (jobs - 1) / (first to last RQ ``ended_at``). "start→all
ready" is the wall time from starting the worker to its exit, start-up included.

Latency: with a worker already waiting, ``--warmup`` unmeasured and then
``--samples`` measured handoffs are created one at a time, at most one per
``--pace-ms``. Each is timed from just before its POST until its job's result
arrives on RQ's result stream (a blocking XREAD; resolution well under 1 ms).
A trivial job is timed from just before its enqueue instead.
The job returns only after the assessment and its event are committed, and
the database is checked to show ``ready`` for every sample.

Pairs (done-when 2's precise figure): a 40-job burst of the trivial job spans ~0.1 s,
so one descheduling moved its rate and the ratio with it. After each run's bursts and
latencies, one waiting SimpleWorker (not ``--burst``) runs ``--warmup-pairs`` unreported and
``--pairs`` measured pairs of ``--pair-jobs``-job batches, trivial and assessments, ABBA. Each
batch is queued behind a gate job (``bench/trivial_job.py``'s ``hold``), left to settle, then
released; its rate is (jobs - 1) / first to last RQ ``ended_at`` of the runs that returned
"ready". Each run's figure is the median of its pair ratios; printed below the table.

Prints one row per kind with the median over the runs of: assessments/s, the
ratios to the trivial job's rate and to SimpleWorker's assessments/s in the same
run, start→all ready, create→ready p50 and p99 (nearest rank over that run's
samples, so the slowest one below 100 samples) and the job's own run time (RQ's
``started_at`` to ``ended_at``, median over the samples). The pool row is two
processes, not one; its workers run no reconciler. Exits 0, or 1 with the error
when a job fails, a process dies or a deadline passes.

``--profile DIR`` runs each burst worker under ``py-spy record --idle --threads
--nonblocking --format raw`` (every thread, waiting included: a burst is one job after another,
so its wall time is what counts) into ``DIR/run{n}-{kind}.txt``;
``python -m bench.profile_summary --worker DIR/*.txt`` sums them up.

Every process it started (each leads its own process group) and the database
are removed at the end, also on errors, Ctrl-C or SIGTERM. A ``SpawnWorker``
work horse leads its own group; it is only alive while a job runs, and the
worker's warm shutdown waits for it.
"""

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.results import Result

from bench.common import (
    DEFAULT_PG_ADMIN_URL,
    REPO,
    add_prepared_statements_option,
    install_sigterm_handler,
    percentile,
    prepared_statements_env,
)
from bench.trivial_job import HOLD_FUNC, NOOP_FUNC
from shared.core import keys
from shared.core.settings import Settings
from shared.events.models import EventType
from shared.handoffs.models import AssessmentStatus
from testkit.pg import fresh_database, libpq_dsn
from testkit.procs import (
    HOST,
    Proc,
    ProcessError,
    api_env,
    base_url,
    escalations_binary,
    free_port,
    redis_url,
    running,
    spawn,
    start_api,
    start_redis,
    wait_until,
)
from testkit.samples import fresh_handoff_body
from testkit.storm import API, engineer_headers

ORG = "bench-assessments"
POLL_SECONDS = 0.005  # waiting for a burst worker to exit
JOB_BUDGET_SECONDS = 5.0  # per job, for the burst deadline
BURST_SLACK_SECONDS = 60.0
RESULT_TIMEOUT_SECONDS = 30  # XREAD block, whole seconds (RQ's API)
PROFILE_RATE = 250  # py-spy samples per second with --profile
POOL_PROCESSES = 2
SPAWN_SHARE = 0.1  # a SpawnWorker job costs about a second: run a tenth of the jobs
GATE_SECONDS = 120  # the longest a gate job holds its worker while a batch is queued
#: Between queueing a batch and opening its gate, so the creates' tail (the API's relay
#: marks their events within 50 ms) is over before either kind's batch runs.
SETTLE_SECONDS = 0.3


class BenchError(RuntimeError):
    """A job did not end as expected or a worker misbehaved."""


# --- worker kinds -----------------------------------------------------------------


@dataclass(frozen=True)
class WorkerKind:
    """One way to run assessment workers, and how to start it."""

    key: str
    label: str
    processes: int = 1
    share: float = 1.0  # of --jobs and --samples, for kinds too slow to run them all
    trivial: bool = False  # runs the no-op job instead of assessments

    @property
    def worker_class(self) -> str:
        return "simple" if self.trivial else self.key

    def jobs(self, args: argparse.Namespace) -> int:
        return max(2, round(args.jobs * self.share))

    def samples(self, args: argparse.Namespace) -> int:
        return max(1, round(args.samples * self.share))

    def argv(self, *, name: str, redis_url: str, burst: bool) -> list[str]:
        if self.key == "pool":
            return self._pool_argv(redis_url, burst)
        argv = [escalations_binary(), "worker", "--worker-class", self.worker_class]
        argv += ["--name", name]
        return argv + (["--burst"] if burst else [])

    def _pool_argv(self, redis_url: str, burst: bool) -> list[str]:
        rq = str(Path(sys.executable).with_name("rq"))
        argv = [
            rq, "worker-pool", "--num-workers", str(self.processes),
            "--worker-class", "rq.worker.SimpleWorker", "--logging-level", "WARNING",
            "--url", f"{redis_url}?protocol=2",  # RQ 2.x parses RESP2 replies
        ]  # fmt: skip
        return argv + (["--burst"] if burst else []) + [keys.ASSESSMENTS_QUEUE]


TRIVIAL = WorkerKind("trivial", "trivial job (SimpleWorker)", trivial=True)
SIMPLE = WorkerKind("simple", "SimpleWorker")
KINDS = (
    TRIVIAL,
    SIMPLE,
    WorkerKind("fork", "Worker (fork per job)"),
    WorkerKind("spawn", "SpawnWorker (spawn per job)", share=SPAWN_SHARE),
    WorkerKind("pool", f"rq worker-pool x{POOL_PROCESSES} (Simple)", POOL_PROCESSES),
)


# --- results ----------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    """A burst over a pre-filled queue."""

    jobs: int
    span_s: float  # first to last ready event
    wall_s: float  # worker start to worker exit

    @property
    def rate(self) -> float:
        return (self.jobs - 1) / self.span_s


@dataclass(frozen=True)
class Sample:
    """One handoff created while a worker waited."""

    latency_s: float  # POST start to the job's result
    job_run_s: float  # RQ's started_at to ended_at: the job function alone


@dataclass(frozen=True)
class KindRun:
    """One kind measured once: a burst and a series of create→ready samples."""

    kind: WorkerKind
    throughput: Throughput
    samples: list[Sample]

    @property
    def p50_ms(self) -> float:
        return 1000 * percentile([sample.latency_s for sample in self.samples], 50)

    @property
    def p99_ms(self) -> float:
        return 1000 * percentile([sample.latency_s for sample in self.samples], 99)

    @property
    def job_run_ms(self) -> float:
        return 1000 * statistics.median(sample.job_run_s for sample in self.samples)


@dataclass(frozen=True)
class Pair:
    """A trivial batch and an assessment batch run back to back by one warm worker."""

    trivial_rate: float  # jobs/s
    assessment_rate: float

    @property
    def ratio(self) -> float:
        return self.assessment_rate / self.trivial_rate


@dataclass(frozen=True)
class Row:
    """One kind's medians over the runs; ``ratio`` is to SimpleWorker and
    ``vs_trivial`` to the trivial job, each in the same run."""

    kind: WorkerKind
    runs: int
    jobs: int
    samples: int
    rate: float
    vs_trivial: float
    ratio: float
    wall_s: float
    p50_ms: float
    p99_ms: float
    job_run_ms: float


def summarize(runs: Sequence[dict[str, KindRun]]) -> list[Row]:
    """One row per kind (each run maps kind key to its measurement)."""
    return [row_for(key, runs) for key in runs[0]]


def row_for(key: str, runs: Sequence[dict[str, KindRun]]) -> Row:
    mine = [run[key] for run in runs]
    return Row(
        kind=mine[0].kind,
        runs=len(mine),
        jobs=mine[0].throughput.jobs,
        samples=len(mine[0].samples),
        rate=statistics.median(m.throughput.rate for m in mine),
        vs_trivial=statistics.median(
            run[key].throughput.rate / run[TRIVIAL.key].throughput.rate for run in runs
        ),  # fmt: skip
        ratio=statistics.median(
            run[key].throughput.rate / run[SIMPLE.key].throughput.rate for run in runs
        ),  # fmt: skip
        wall_s=statistics.median(m.throughput.wall_s for m in mine),
        p50_ms=statistics.median(m.p50_ms for m in mine),
        p99_ms=statistics.median(m.p99_ms for m in mine),
        job_run_ms=statistics.median(m.job_run_ms for m in mine),
    )


# --- the environment --------------------------------------------------------------


@dataclass
class Bench:
    """Everything a measurement talks to: the API, Redis, the database, worker env."""

    env: dict[str, str]
    redis_url: str
    http: httpx.Client
    redis: Redis
    db: psycopg.Connection
    log_dir: Path
    headers: dict[str, str]
    started_workers: int = 0

    def create_handoff(self) -> str:
        response = self.http.post(API, json=fresh_handoff_body(), headers=self.headers)
        if response.status_code != 201:
            raise BenchError(f"create answered {response.status_code}: {response.text}")
        handoff_id: str = response.json()["id"]
        return handoff_id

    def enqueue_noop(self) -> str:
        """A no-op job on the assessments queue with an assessment's RQ options
        (shared/jobs.py ``enqueue_assessment``, default settings)."""
        defaults = Settings.model_fields
        job_id = f"noop-{secrets.token_hex(8)}"
        Queue(keys.ASSESSMENTS_QUEUE, connection=self.redis).enqueue(
            NOOP_FUNC,
            job_id=job_id,
            description=f"No-op (bench) {job_id}",
            meta={"handoff_id": job_id, "org_id": ORG, "request_id": None},
            job_timeout=defaults["assessment_job_timeout_seconds"].default,
            retry=Retry(
                max=defaults["assessment_retries"].default,
                interval=defaults["assessment_retry_intervals_seconds"].default,
            ),
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
        )
        return job_id

    def submit(self, kind: WorkerKind) -> tuple[str, str | None]:
        """One job for ``kind``: (RQ job id, handoff id or None for a trivial job)."""
        if kind.trivial:
            return self.enqueue_noop(), None
        handoff_id = self.create_handoff()
        return keys.assessment_job_id(handoff_id), handoff_id

    def queued_jobs(self) -> int:
        return Queue(keys.ASSESSMENTS_QUEUE, connection=self.redis).count

    def start_workers(self, kind: WorkerKind, *, burst: bool, profile: Path | None = None) -> Proc:
        """Start ``kind`` (not waiting for it to register); with ``profile``,
        under py-spy writing there."""
        self.started_workers += 1
        name = f"bench-{kind.key}-{self.started_workers}"
        argv = kind.argv(name=name, redis_url=self.redis_url, burst=burst)
        if profile is not None:
            argv = py_spy_argv(profile) + argv
        env = {**self.env, "PYTHONPATH": str(REPO)}  # for the trivial job's module
        return spawn(name, argv, port=0, log_dir=self.log_dir, env=env)

    def registered_workers(self) -> set[bytes]:
        return set(self.redis.smembers("rq:workers"))


@contextmanager
def bench_environment(args: argparse.Namespace) -> Iterator[Bench]:
    """Redis, a fresh database and one API; all removed on exit."""
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="assess-bench-")))
        database_url = stack.enter_context(fresh_database(args.pg_admin_url))
        redis_proc = stack.enter_context(running(start_redis(free_port(), log_dir=log_dir)))
        secret = secrets.token_urlsafe(32)
        url = redis_url(redis_proc.port)
        env = api_env(
            database_url=database_url,
            redis_url=url,
            jwt_secret=secret,
            **prepared_statements_env(args),
        )
        api = stack.enter_context(running(start_api(free_port(), env=env, log_dir=log_dir)))
        yield Bench(
            env=env,
            redis_url=url,
            http=stack.enter_context(httpx.Client(base_url=base_url(api.port), timeout=30.0)),
            redis=stack.enter_context(bench_redis(url)),
            db=stack.enter_context(psycopg.connect(libpq_dsn(database_url), autocommit=True)),
            log_dir=log_dir,
            headers=engineer_headers(secret=secret, org=ORG),
        )


def py_spy_argv(output: Path) -> list[str]:
    """``py-spy record`` of every thread, idle ones too, as collapsed stacks in ``output``."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return [
        binary, "record", "--rate", str(PROFILE_RATE), "--format", "raw", "--idle",
        "--threads", "--nonblocking", "--output", str(output), "--",
    ]  # fmt: skip


def bench_redis(url: str) -> Redis:
    """RESP2 (what RQ 2.x parses), with a socket timeout longer than XREAD's block
    (redis-py's default, 5 s, is shorter than a slow SpawnWorker job)."""
    return Redis.from_url(url, protocol=2, socket_timeout=RESULT_TIMEOUT_SECONDS + 5)


# --- throughput -------------------------------------------------------------------


def measure_throughput(
    bench: Bench, kind: WorkerKind, jobs: int, profile: Path | None = None
) -> Throughput:
    """Fill the queue with ``jobs`` assessments, then time one burst worker over it."""
    submitted = [bench.submit(kind) for _ in range(jobs)]
    if (queued := bench.queued_jobs()) != jobs:
        raise BenchError(f"{queued} jobs queued before the burst, want {jobs}")
    started = time.monotonic()
    with running(bench.start_workers(kind, burst=True, profile=profile)) as proc:
        wait_for_exit(proc, timeout=jobs * JOB_BUDGET_SECONDS + BURST_SLACK_SECONDS)
    wall_s = time.monotonic() - started
    if kind.trivial:
        stamps = ended_times(bench.redis, [job_id for job_id, _ in submitted])
    else:
        stamps = ready_event_times(bench.db, [handoff_id for _, handoff_id in submitted])
    if len(stamps) != jobs:
        raise BenchError(f"{kind.key}: {len(stamps)} of {jobs} assessments ready after the burst:\n"
                         f"{proc.log_tail()}")  # fmt: skip
    return Throughput(jobs=jobs, span_s=stamps[-1] - stamps[0], wall_s=wall_s)


def wait_for_exit(proc: Proc, *, timeout: float) -> None:
    """Poll until ``proc`` exits with 0; ``BenchError`` otherwise or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while proc.running:
        if time.monotonic() > deadline:
            raise BenchError(f"{proc.name} still running after {timeout:.0f} s:\n{proc.log_tail()}")
        time.sleep(POLL_SECONDS)
    if proc.popen.returncode != 0:
        raise BenchError(f"{proc.name} exited {proc.popen.returncode}:\n{proc.log_tail()}")


def ended_times(redis: Redis, job_ids: list[str]) -> list[float]:
    """Sorted POSIX times at which these jobs ended successfully (RQ's ``ended_at``)."""
    jobs = [job for job in Job.fetch_many(job_ids, connection=redis) if job is not None]
    return sorted(
        job.ended_at.timestamp()
        for job in jobs
        if job.ended_at is not None and job.get_status() == JobStatus.FINISHED
    )


def ready_event_times(db: psycopg.Connection, handoff_ids: list[str | None]) -> list[float]:
    """Sorted POSIX times of the ``handoff_assessment_ready`` events of these handoffs."""
    rows = db.execute(
        "SELECT extract(epoch FROM at) FROM events WHERE type = %s AND handoff_id = ANY(%s)"
        " ORDER BY at",
        (EventType.assessment_ready.value, handoff_ids),
    ).fetchall()
    return [float(row[0]) for row in rows]


# --- latency ----------------------------------------------------------------------


def measure_latency(bench: Bench, kind: WorkerKind, args: argparse.Namespace) -> list[Sample]:
    """``kind.samples(args)`` handoffs created one at a time while a worker waits."""
    before = bench.registered_workers()
    with running(bench.start_workers(kind, burst=False)) as proc:
        wait_until(
            lambda: len(bench.registered_workers() - before) >= kind.processes,
            proc=proc, what="worker registration",
        )  # fmt: skip
        pace_s = args.pace_ms / 1000
        count = args.warmup + kind.samples(args)
        samples = [one_sample(bench, kind, proc, pace_s) for _ in range(count)]
    return samples[args.warmup :]


def one_sample(bench: Bench, kind: WorkerKind, proc: Proc, pace_s: float) -> Sample:
    """Create a handoff (or enqueue a trivial job) and time it until its job's
    result is written. Returns no sooner than ``pace_s`` after it began."""
    began = time.perf_counter()
    job_id, handoff_id = bench.submit(kind)
    job = Job.fetch(job_id, connection=bench.redis)
    result = job.latest_result(timeout=RESULT_TIMEOUT_SECONDS)
    latency = time.perf_counter() - began
    check_ready(bench, job_id, handoff_id, result, proc)
    job.refresh()
    if job.started_at is None or job.ended_at is None:
        raise BenchError(f"job {job.id} finished without started_at/ended_at")
    paced(pace_s - latency)
    return Sample(latency, (job.ended_at - job.started_at).total_seconds())


def check_ready(
    bench: Bench, job_id: str, handoff_id: str | None, result: Result | None, proc: Proc
) -> None:
    if result is None:
        raise BenchError(f"no result for {job_id} in {RESULT_TIMEOUT_SECONDS} s "
                         f"(worker running: {proc.running}):\n{proc.log_tail()}")  # fmt: skip
    if result.type != Result.Type.SUCCESSFUL or result.return_value != "ready":
        raise BenchError(f"job {job_id}: {result.type} {result.return_value!r} "
                         f"{result.exc_string or ''}")  # fmt: skip
    if handoff_id is None:
        return  # a trivial job: no handoff to check
    row = bench.db.execute(
        "SELECT assessment_status FROM handoffs WHERE id = %s", (handoff_id,)
    ).fetchone()
    if row is None or row[0] != AssessmentStatus.ready.value:
        raise BenchError(f"handoff {handoff_id} is {row} after its job returned 'ready'")


def paced(seconds: float) -> None:
    """Deliberate rate limiting between creates (a sleep, not a wait for a condition)."""
    if seconds > 0:
        time.sleep(seconds)


# --- alternated batches in one warm worker ------------------------------------------


def measure_pairs(bench: Bench, args: argparse.Namespace) -> list[Pair]:
    """``--warmup-pairs`` unreported, then ``--pairs`` measured pairs of batches of
    ``--pair-jobs``, trivial and assessments, on one waiting SimpleWorker (not
    ``--burst``): no start-up and no first job in any batch, and both kinds in
    the same process within a second of each other. Alternated ABBA (trivial
    first, then assessments first, …), so a load that drifts during a pair
    weighs on both of its kinds alike."""
    before = bench.registered_workers()
    with running(bench.start_workers(SIMPLE, burst=False)) as proc:
        wait_until(
            lambda: len(bench.registered_workers() - before) >= 1,
            proc=proc, what="worker registration",
        )  # fmt: skip
        pairs = []
        for index in range(args.warmup_pairs + args.pairs):
            order = (TRIVIAL, SIMPLE) if index % 2 == 0 else (SIMPLE, TRIVIAL)
            rates = {kind.key: gated_batch(bench, kind, args.pair_jobs, proc) for kind in order}
            pairs.append(Pair(rates[TRIVIAL.key], rates[SIMPLE.key]))
        # A job enqueued again meanwhile (before the reconciler's fix, one that finished
        # during a pass) runs here, not in the next burst's pre-filled queue.
        wait_until(lambda: bench.queued_jobs() == 0, proc=proc, what="an empty queue")
    return pairs[args.warmup_pairs :]


def gated_batch(bench: Bench, kind: WorkerKind, jobs: int, proc: Proc) -> float:
    """Hold the worker on a gate job, queue ``jobs`` of ``kind`` behind it, let the
    queueing settle, open the gate and wait for every job's result. Returns
    (jobs - 1) / first to last RQ ``ended_at`` of the runs that returned "ready":
    the same stamp for both kinds, none of the queueing in it, and no second run
    of a job (one that returned "skipped") counted or in the way."""
    gate_key = f"bench:gate:{secrets.token_hex(8)}"
    gate = Queue(keys.ASSESSMENTS_QUEUE, connection=bench.redis).enqueue(
        HOLD_FUNC, gate_key, GATE_SECONDS, job_timeout=GATE_SECONDS + 30, result_ttl=600
    )
    submitted = [bench.submit(kind) for _ in range(jobs)]
    paced(SETTLE_SECONDS)
    bench.redis.lpush(gate_key, "open")
    stamps = sorted(
        ready_ended_at(bench, job_id, handoff_id, proc) for job_id, handoff_id in submitted
    )
    gate_result = gate.latest_result()
    if gate_result is None or gate_result.return_value != "released":
        raise BenchError(f"the gate was not held until the batch was queued: {gate_result}")
    return (jobs - 1) / (stamps[-1] - stamps[0])


def ready_ended_at(bench: Bench, job_id: str, handoff_id: str | None, proc: Proc) -> float:
    """When the run of ``job_id`` that returned "ready" ended (POSIX time), after
    waiting for the job's first result; ``check_ready``'s error when none did."""
    job = Job.fetch(job_id, connection=bench.redis)
    latest = job.latest_result(timeout=RESULT_TIMEOUT_SECONDS)
    for result in job.results():  # newest first; a later duplicate returned "skipped"
        if result.return_value == "ready" and result.execution_ended_at is not None:
            check_ready(bench, job_id, handoff_id, result, proc)
            return result.execution_ended_at.timestamp()
    check_ready(bench, job_id, handoff_id, latest, proc)
    raise BenchError(f"job {job_id}: its run that returned 'ready' has no end time")


# --- main -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    install_sigterm_handler()
    kinds = [kind for kind in KINDS if not (args.no_pool and kind.key == "pool")]
    if args.kinds:
        kinds = [kind for kind in kinds if kind.key in args.kinds]
    print_setup(args, kinds)
    load_before = os.getloadavg()
    try:
        with bench_environment(args) as bench:
            runs, pairs = [], []
            for index in range(args.runs):
                runs.append(run_once(bench, kinds, args, index))
                if args.pairs:
                    pairs.append(measure_pairs(bench, args))
                    report_pairs(index, pairs[-1])
    except (BenchError, ProcessError, RedisError, httpx.HTTPError) as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; every process stopped and the database dropped", file=sys.stderr)
        return 130
    print_table(summarize(runs), load_before=load_before, load_after=os.getloadavg())
    if pairs:
        print_pairs(pairs, args)
    return 0


def run_once(
    bench: Bench, kinds: Sequence[WorkerKind], args: argparse.Namespace, index: int
) -> dict[str, KindRun]:
    """Every kind once: its burst, then its latency series."""
    measured = {}
    for kind in kinds:
        profile = None if args.profile is None else args.profile / f"run{index + 1}-{kind.key}.txt"
        throughput = measure_throughput(bench, kind, kind.jobs(args), profile)
        samples = measure_latency(bench, kind, args)
        measured[kind.key] = KindRun(kind, throughput, samples)
        report_progress(index, measured[kind.key])
    return measured


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--jobs", type=_at_least(2), default=40, help="handoffs per throughput burst")
    add("--samples", type=_at_least(1), default=40, help="measured create→ready latencies")
    add("--warmup", type=_at_least(0), default=3, help="unmeasured creates before them")
    add("--runs", type=_at_least(1), default=3, help="repetitions; the table shows medians")
    add("--pace-ms", type=_at_least(0), default=50, help="at most one create per this many ms")
    add(
        "--pairs",
        type=_at_least(0),
        default=6,
        help="per run, measured trivial/assessment batch pairs in one warm worker (0: none)",
    )
    add("--warmup-pairs", type=_at_least(0), default=1, help="unreported pairs before them")
    add("--pair-jobs", type=_at_least(2), default=100, help="jobs per batch of a pair")
    add("--no-pool", action="store_true", help="skip the rq worker-pool row")
    add("--kinds", type=_kinds, default=None,
        help="only these kinds, comma-separated (trivial and simple are always run)")  # fmt: skip
    add("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL,
        help="a database to connect to for CREATE/DROP DATABASE")  # fmt: skip
    add("--profile", type=Path, default=None,
        help="py-spy record each burst worker into DIR (collapsed stacks)")  # fmt: skip
    add_prepared_statements_option(parser)
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    return args


def _kinds(text: str) -> set[str]:
    chosen = {key.strip() for key in text.split(",") if key.strip()}
    known = {kind.key for kind in KINDS}
    if unknown := chosen - known:
        raise argparse.ArgumentTypeError(f"unknown kinds {sorted(unknown)}; known: {sorted(known)}")
    return chosen | {TRIVIAL.key, SIMPLE.key}  # every ratio is to these two


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


# --- report -----------------------------------------------------------------------


def print_setup(args: argparse.Namespace, kinds: Sequence[WorkerKind]) -> None:
    print(
        f"{len(kinds)} worker kinds x {args.runs} runs on {HOST}, {os.cpu_count()} CPUs, "
        f"heuristic assessor: bursts of {args.jobs} jobs, {args.warmup}+{args.samples} "
        f"creates at most one per {args.pace_ms} ms (SpawnWorker: {SPAWN_SHARE:.0%} of both)"
        + (", prepared statements" if args.prepared_statements else ""),
        flush=True,
    )


def report_progress(index: int, run: KindRun) -> None:
    print(
        f"  run {index + 1} {run.kind.key:<7} {run.throughput.rate:7.1f}/s  "
        f"all ready {run.throughput.wall_s:5.2f} s  p50 {run.p50_ms:6.1f} ms  "
        f"p99 {run.p99_ms:6.1f} ms  job run {run.job_run_ms:6.1f} ms",
        flush=True,
    )


def report_pairs(index: int, pairs: Sequence[Pair]) -> None:
    ratios = " ".join(f"{pair.ratio:.2f}" for pair in pairs)
    trivial = statistics.median(pair.trivial_rate for pair in pairs)
    assessments = statistics.median(pair.assessment_rate for pair in pairs)
    print(
        f"  run {index + 1} pairs   trivial {trivial:.1f}/s  assessments {assessments:.1f}/s"
        f"  ratio per pair {ratios} → {statistics.median(p.ratio for p in pairs):.2f}",
        flush=True,
    )


def print_pairs(runs: Sequence[Sequence[Pair]], args: argparse.Namespace) -> None:
    """The alternated batches: each run's median pair ratio, and their median."""
    medians = [statistics.median(pair.ratio for pair in pairs) for pairs in runs]
    per_run = ", ".join(f"{median:.2f}" for median in medians)
    print(
        f"\nAssessments ÷ trivial job, alternated in one warm SimpleWorker ({args.warmup_pairs} "
        f"warm-up + {args.pairs} pairs of {args.pair_jobs}-job batches per run, ABBA; each\n"
        "batch queued behind a gate job, its rate (jobs - 1) / first to last RQ ended_at): "
        f"per run {per_run} → median **{statistics.median(medians):.2f}**"
        f"\n(trivial {statistics.median(p.trivial_rate for r in runs for p in r):.1f}/s, "
        f"assessments {statistics.median(p.assessment_rate for r in runs for p in r):.1f}/s, "
        "medians over every pair)."
    )


COLUMNS = (
    ("worker class", 30),
    ("procs", 5),
    ("burst/samples", 13),
    ("assessments/s", 13),
    ("vs trivial", 10),
    ("vs Simple", 9),
    ("start→all ready", 15),
    ("p50 create→ready", 16),
    ("p99", 9),
    ("job run p50", 11),
)


def print_table(
    rows: Sequence[Row], *, load_before: tuple[float, ...], load_after: tuple[float, ...]
) -> None:
    header = aligned([title for title, _ in COLUMNS])
    print(f"\n{header}\n{'-' * len(header)}")
    for row in rows:
        print(aligned(cells(row)))
    print(
        f"\nMedians over {rows[0].runs} runs. assessments/s: (jobs - 1) / first to last ready "
        "event of a burst on a\npre-filled queue. Latency: POST start to the job's result on "
        "RQ's result stream (blocking XREAD,\n<1 ms resolution; the database showed ready each "
        "time); p99 is nearest rank, so the slowest\nsample below 100 samples. job run: RQ's "
        "started_at to ended_at, the job function alone.\ntrivial job: a no-op on the same "
        "worker class and queue (rate from RQ's ended_at, latency\nfrom its enqueue); vs "
        "trivial is each row's rate over the trivial job's in the same run.\n"
        f"Load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}."
    )


def aligned(texts: Sequence[str]) -> str:
    """The first column left-aligned, the others right-aligned, to COLUMNS' widths."""
    widths = [width for _, width in COLUMNS]
    first = f"{texts[0]:<{widths[0]}}"
    return " ".join([first] + [f"{t:>{w}}" for t, w in zip(texts[1:], widths[1:], strict=True)])


def cells(row: Row) -> list[str]:
    return [
        row.kind.label,
        str(row.kind.processes),
        f"{row.jobs}/{row.samples}",
        f"{row.rate:.1f}",
        f"{row.vs_trivial:.2f}x",
        f"{row.ratio:.2f}x",
        f"{row.wall_s:.2f} s",
        f"{row.p50_ms:.1f} ms",
        f"{row.p99_ms:.1f} ms",
        f"{row.job_run_ms:.1f} ms",
    ]


if __name__ == "__main__":
    sys.exit(main())
