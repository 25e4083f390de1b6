"""Where a server's GIL time went, from ``bench/api.py --profile DIR``'s py-spy files.

    python bench/profile_summary.py DIR/run1-get-by-id-project.txt [more files]
    python -m bench.profile_summary --worker DIR/run1-simple.txt [more files]

Each file holds collapsed stacks of the thread holding the GIL (``py-spy record
--gil --format raw``). Every sample goes to one bucket: the first rule below
that one of its frames matches, looking from the innermost frame outwards
(so time in PyJWT under ``authenticate`` counts as "token", time in redis-py
under the rate limiter as "rate limit (Redis)"). Prints each bucket's share of
the samples, one column per file.

``--worker`` reads ``bench/assessments.py --profile DIR``'s files instead (every
thread, waiting included: ``py-spy record --idle --threads``): only the worker's
main thread, where RQ runs one job after another, so its samples are the burst's
wall time. Each sample goes to the innermost frame matching ``WORKER_RULES``
(time in psycopg under the store counts as the store, in redis-py under RQ's
heartbeat as RQ).
"""

import re
import sys
from collections import Counter
from pathlib import Path

#: (bucket, pattern on one frame "function (file:line)"), tried innermost frame first.
RULES: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(pattern))
    for name, pattern in [
        ("token (PyJWT, key cache)", r"jwt/|shared/auth\.py|shared/oidc|api_keys/|authenticator"),
        ("rate limit (Redis)", r"limits/|shared/ratelimit\.py"),
        ("enqueue (RQ, Redis)", r"rq/|shared/jobs\.py"),
        ("Redis (other)", r"redis/"),
        ("pool checkout/checkin", r"sqlalchemy/pool/"),
        ("psycopg", r"psycopg/"),
        ("SQLAlchemy Core/ORM", r"sqlalchemy/|sqlmodel/"),
        ("pydantic build/dump", r"pydantic|model_validate|model_dump"),
        ("JSON (stdlib)", r"json/"),
        ("threadpool hop", r"anyio/|starlette/concurrency|queue\.py|threading\.py"),
        ("dependency solving", r"fastapi/dependencies/"),
        ("project request work", r"shared/|services/api/routes|services/api/in_thread"),
        ("project middleware", r"services/api/middleware|request_context"),
        ("floor app", r"bench/floor\.py"),
        ("routing, FastAPI/Starlette", r"fastapi/|starlette/"),
        ("uvicorn, httptools", r"uvicorn/|services/api/server\.py|httptools"),
        ("asyncio, uvloop", r"asyncio/|uvloop"),
    ]
]


#: ``--worker``: (bucket, pattern), the innermost matching frame decides.
WORKER_RULES: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(pattern))
    for name, pattern in [
        ("job: lease (Redis)", r"services/worker/lease\.py"),
        ("job: checkout (pool, ping)", r"Engine\.connect \(|sqlalchemy/pool/"),
        ("job: count + memory", r"^_start(_in_pipeline|_in_one_statement)? \(|start_attempt"),
        ("job: heuristic", r"assessors/heuristic\.py"),
        ("job: store UPDATE", r"^_store(_pipelined)? \(shared/assessments"),
        ("job: store as one statement (with its COMMIT)", r"^store_if_unchanged \("),
        ("job: event INSERT", r"_insert_in_one_statement|_next_seq|create_deliveries"),
        ("job: Slack row UPDATE", r"note_event"),
        ("job: event JSON, summary", r"record_event|event_json|handoff_summary|summary_of_columns"),
        ("job: publish (relay fast path)", r"_after_commit|committed_outside_session"),
        ("job: COMMIT", r"Session\.commit \("),
        ("job: other", r"services/worker/tasks\.py|shared/assessments/"),
        ("RQ per job (dequeue, heartbeat, registries)", r"rq/"),
    ]
]
#: ``--worker``: a sample outside RQ's work loop is start-up or exit.
_IN_RQ_LOOP = re.compile(r"^BaseWorker\.work \(")
STARTUP = "start-up and exit (outside RQ's loop)"


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks.append((stack.split(";"), int(count)))
    return stacks


def bucket(frames: list[str], rules: list[tuple[str, re.Pattern[str]]] = RULES) -> str:
    for frame in reversed(frames):
        for name, pattern in rules:
            if pattern.search(frame):
                return name
    return "other"


def shares(path: Path, *, worker: bool = False) -> tuple[int, Counter[str]]:
    stacks = load(path)
    if worker:  # the main thread's samples, from its thread frame inwards
        stacks = [
            (frames[index + 1 :], count)
            for frames, count in stacks
            for index, frame in enumerate(frames[:2])
            if frame.startswith("thread ") and frame.endswith("MainThread")
        ]
    rules = WORKER_RULES if worker else RULES
    buckets: Counter[str] = Counter()
    for frames, count in stacks:
        if worker and not any(_IN_RQ_LOOP.search(frame) for frame in frames):
            buckets[STARTUP] += count
        else:
            buckets[bucket(frames, rules)] += count
    return sum(count for _, count in stacks), buckets


def main(argv: list[str]) -> int:
    worker = "--worker" in argv
    argv = [arg for arg in argv if arg != "--worker"]
    if not argv:
        print(__doc__)
        return 2
    paths = [Path(arg) for arg in argv]
    results = [shares(path, worker=worker) for path in paths]
    width = max(len(p.stem) for p in paths)
    names = [p.stem.removeprefix("run1-")[: max(12, width)] for p in paths]
    col = max(12, *(len(n) for n in names))
    title = "main-thread samples" if worker else "samples holding the GIL"
    label = 44 if worker else 26
    print(f"{title:<{label + 2}}" + "".join(f"{n:>{col + 1}}" for n in names))
    print(f"{'':<{label + 2}}" + "".join(f"{total:>{col + 1}}" for total, _ in results))
    rows = [name for name, _ in (WORKER_RULES if worker else RULES)] + ["other"]
    if worker:
        rows.append(STARTUP)
    for row in rows:
        values = [buckets[row] / max(total, 1) * 100 for total, buckets in results]
        if any(value >= 0.5 for value in values):
            print(f"  {row:<{label}}" + "".join(f"{value:>{col}.1f}%" for value in values))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
