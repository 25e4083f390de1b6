"""The floor for a create: what one row INSERTed in its own transaction costs
through the same stack, next to ``/healthz`` and a real create on the same replica.

    python -m bench.floor [--runs 3] [--seconds 8] [--connections 32]
                          [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Starts a private redis-server, a fresh PostgreSQL database (migrated, plus one
``bench_floor`` table) and one replica: ``escalations api`` exactly as the CLI
serves it, plus ``POST /bench/floor``, a route shaped like create (the same
middleware, authentication and create rate limit, one threadpool hop, one
session) whose work is one ``INSERT`` and a ``COMMIT``. Then, ``--runs`` times,
one wrk (as ``bench/api.py``) drives ``/healthz``, the floor and "create, 1 org".
Prints req/s, p50, p99, the replica's CPU per request and the ratio to
``/healthz``: create's CPU over the floor's is what the create path itself
costs above the stack. Everything it started is removed at the end.
"""

import argparse
import statistics
import sys
import tempfile
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

from sqlalchemy import text

from bench.api import Row, create_script, get_script, run_wrk
from bench.common import DEFAULT_PG_ADMIN_URL, install_sigterm_handler
from shared.core.db import make_engine
from shared.core.models import Role
from testkit.pg import fresh_database
from testkit.procs import (
    api_env,
    base_url,
    free_port,
    redis_url,
    running,
    spawn,
    start_redis,
    wait_ready,
)
from testkit.storm import bearer

FLOOR_TABLE = "CREATE TABLE bench_floor (id varchar(36) PRIMARY KEY, org_id varchar(128) NOT NULL)"


def serve(host: str, port: int) -> None:
    """The CLI's ``escalations api``, its app with ``POST /bench/floor`` added."""
    from fastapi import Depends, Response
    from sqlmodel import Session

    import services.api.app as app_module
    from services import cli
    from services.api.in_thread import InThread, in_thread
    from shared.auth.tokens import Principal
    from shared.core.ratelimit import Limit

    create_app = app_module.create_app
    insert = text("INSERT INTO bench_floor (id, org_id) VALUES (:id, :org_id)")

    def with_floor(settings: object = None) -> object:
        app = create_app(settings)  # type: ignore[arg-type]

        @app.post("/bench/floor", status_code=201)
        async def floor(
            work: Annotated[InThread, Depends(in_thread(limit=Limit.CREATES))],
        ) -> Response:
            def one_insert(session: Session, principal: Principal) -> Response:
                session.execute(insert, {"id": str(uuid.uuid4()), "org_id": principal.org_id})
                session.commit()
                return Response(status_code=201)

            return await work.run(one_insert)

        return app

    app_module.create_app = with_floor  # type: ignore[assignment]
    cli.api(host=host, port=port)


def floor_script(token: str) -> str:
    return (
        'wrk.method = "POST"\nwrk.path = "/bench/floor"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve("127.0.0.1", args.serve)
        return 0
    install_sigterm_handler()
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-floor-")))
        redis = stack.enter_context(running(start_redis(free_port(), log_dir=log_dir)))
        database_url = stack.enter_context(fresh_database(args.pg_admin_url, prefix="bench_floor"))
        engine = make_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text(FLOOR_TABLE))
        engine.dispose()
        secret = "bench-floor-" + "x" * 40
        env = api_env(database_url=database_url, redis_url=redis_url(redis.port), jwt_secret=secret)
        port = free_port()
        argv_ = [sys.executable, "-m", "bench.floor", "--serve", str(port)]  # cwd: the root
        replica = stack.enter_context(
            running(spawn("floor", argv_, port=port, log_dir=log_dir, env=env))
        )
        wait_ready(base_url(port), proc=replica)
        url, pid = base_url(port), replica.popen.pid
        token = bearer(
            secret=secret, sub="engineer-1", name="Bench", role=Role.engineer, org="floor"
        )
        token = token["Authorization"].removeprefix("Bearer ")
        runs: list[list[Row]] = []
        for run in range(args.runs):
            plan = [
                ("healthz", get_script("/healthz", None)),
                ("floor: one INSERT", floor_script(token)),
                ("create, 1 org", create_script([token], f"floor-r{run}-{uuid.uuid4().hex[:6]}")),
            ]
            runs.append([run_wrk(name, url, script, args, pid) for name, script in plan])
            print_rows(f"run {run + 1}", runs[-1])
        print_rows(f"medians of {args.runs} runs", median_rows(runs))
        errors = sum(row.errors for rows in runs for row in rows)
        if errors:
            print(f"PROBLEM: {errors} error answers (non-2xx or socket errors)")
        return 1 if errors else 0


def median_rows(runs: list[list[Row]]) -> list[Row]:
    return [
        Row(
            name=rows[0].name,
            rate=statistics.median(r.rate for r in rows),
            p50_ms=statistics.median(r.p50_ms for r in rows),
            p99_ms=statistics.median(r.p99_ms for r in rows),
            errors=sum(r.errors for r in rows),
            cpu_ms=statistics.median(r.cpu_ms for r in rows),
        )
        for rows in zip(*runs, strict=True)
    ]


def print_rows(title: str, rows: Sequence[Row]) -> None:
    base = rows[0].rate
    print(f"\n{title}")
    header = (
        f"{'path':<20} {'req/s':>9} {'p50':>10} {'p99':>10} {'CPU/req':>10} {'vs /healthz':>12}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.name:<20} {row.rate:>9.0f} {row.p50_ms:>7.1f} ms {row.p99_ms:>7.1f} ms "
            f"{row.cpu_ms:>7.2f} ms {row.rate / base:>12.2f}"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
