"""Where a server's GIL time went, from ``bench/api.py --profile DIR``'s py-spy files.

    python bench/profile_summary.py DIR/run1-get-by-id-project.txt [more files]

Each file holds collapsed stacks of the thread holding the GIL (``py-spy record
--gil --format raw``). Every sample goes to one bucket: the first rule below
that one of its frames matches, looking from the innermost frame outwards
(so time in PyJWT under ``authenticate`` counts as "token", time in redis-py
under the rate limiter as "rate limit (Redis)"). Prints each bucket's share of
the samples, one column per file.
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


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks.append((stack.split(";"), int(count)))
    return stacks


def bucket(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in RULES:
            if pattern.search(frame):
                return name
    return "other"


def shares(path: Path) -> tuple[int, Counter[str]]:
    stacks = load(path)
    buckets: Counter[str] = Counter()
    for frames, count in stacks:
        buckets[bucket(frames)] += count
    return sum(count for _, count in stacks), buckets


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    paths = [Path(arg) for arg in argv]
    results = [shares(path) for path in paths]
    width = max(len(p.stem) for p in paths)
    names = [p.stem.removeprefix("run1-")[: max(12, width)] for p in paths]
    col = max(12, *(len(n) for n in names))
    print(f"{'samples holding the GIL':<28}" + "".join(f"{n:>{col + 1}}" for n in names))
    print(f"{'':<28}" + "".join(f"{total:>{col + 1}}" for total, _ in results))
    for row in [name for name, _ in RULES] + ["other"]:
        values = [buckets[row] / max(total, 1) * 100 for total, buckets in results]
        if any(value >= 0.5 for value in values):
            print(f"  {row:<26}" + "".join(f"{value:>{col}.1f}%" for value in values))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
