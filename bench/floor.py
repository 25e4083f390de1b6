"""Each hot path's floor: the same work on a plain FastAPI + uvicorn + PyJWT + psycopg app.

    python -m bench.floor [--runs 3] [--seconds 8] [--connections 32]
                          [--pg-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

**The plain app** (:func:`plain_app`; ``python -m bench.floor --serve-plain PORT``
serves it with ``uvicorn.run``'s defaults: uvloop, httptools) imports nothing of
the project. It answers the project's own paths with the project's own JSON:
sync routes in FastAPI's threadpool, one psycopg connection per worker thread
(autocommit, psycopg's defaults otherwise), the bearer verified by PyJWT (HS256,
the claims the project requires: ``exp sub name role org``), then the one
statement each path needs:

  GET  /api/v1/handoffs/{id}      a primary-key SELECT of the handoff (and its org)
  GET  /api/v1/handoffs?limit=50  a SELECT of 51 rows of the org in queue order
                                  (its index), the 51st only for the next cursor
  POST /api/v1/handoffs           one INSERT in its own transaction (BEGIN, INSERT,
                                  COMMIT); answers the new handoff's JSON

Its table ``floor_handoffs`` holds each handoff as the project's JSON text,
returned as stored (``bench/api.py`` copies what the project answers for its
seeded handoffs): building and serializing the answer is part of the distance
measured. No middleware, rate limit, Redis, job or event. ``bench/api.py`` runs
it beside the project and prints each path's ratio to it.

**Run alone**, this script breaks a create's distance into its two parts on one
wrk (as ``bench/api.py``): the plain app's one-INSERT create; the same INSERT
through the project's stack (the CLI's replica plus ``POST /bench/floor``, a
route shaped like create: the same middleware, authentication, create rate
limit, threadpool hop and session); and a real create, 1 org. Prints req/s,
p50, p99, the server's CPU per request and the ratio to the plain floor.
Everything it started is removed at the end.
"""

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

FLOOR_TABLE = """
CREATE TABLE IF NOT EXISTS floor_handoffs (
    id varchar(36) PRIMARY KEY,
    org_id varchar(128) NOT NULL,
    session_id varchar(128) NOT NULL,
    rank integer NOT NULL,
    created_at timestamptz NOT NULL,
    body text NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_floor_queue ON floor_handoffs (org_id, rank, created_at, id);
CREATE UNIQUE INDEX IF NOT EXISTS uq_floor_session ON floor_handoffs (org_id, session_id);
"""
#: ``POST /bench/floor``'s table (the project-stack variant).
STACK_FLOOR_TABLE = (
    "CREATE TABLE IF NOT EXISTS bench_floor "
    "(id varchar(36) PRIMARY KEY, org_id varchar(128) NOT NULL)"
)
REQUIRED_CLAIMS = ["exp", "sub", "name", "role", "org"]
#: The queue rank of each priority (the project's ``PRIORITY_RANK``).
PRIORITY_RANK = {"critical": 0, "high": 1, "normal": 2, "low": 3}
CLAIM_SLA = timedelta(minutes=15)


# --- the plain app ---------------------------------------------------------------------


def plain_app(dsn: str, secret: str) -> Any:
    """The floor app over the PostgreSQL database ``dsn`` (a libpq conninfo or URL)."""
    import jwt
    import psycopg
    from fastapi import Body, FastAPI, Header, HTTPException, Response

    app = FastAPI()
    local = threading.local()

    def connection() -> psycopg.Connection[Any]:
        conn = getattr(local, "conn", None)
        if conn is None or conn.closed:
            conn = local.conn = psycopg.connect(dsn, autocommit=True)
        return conn

    def claims(authorization: str | None) -> dict[str, Any]:
        if authorization is None or not authorization.startswith("Bearer "):
            raise HTTPException(401, "Missing bearer token.")
        try:
            return jwt.decode(
                authorization[7:],
                secret,
                algorithms=["HS256"],
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.InvalidTokenError as exc:
            raise HTTPException(401, "Invalid token.") from exc

    def json_text(text: str, status: int = 200) -> Response:
        return Response(text, status_code=status, media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        connection().execute("SELECT 1")
        return {"status": "ready"}

    @app.get("/api/v1/handoffs/{handoff_id}")
    def get_by_id(
        handoff_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        org = claims(authorization)["org"]
        row = (
            connection()
            .execute(
                "SELECT body FROM floor_handoffs WHERE id = %s AND org_id = %s", (handoff_id, org)
            )
            .fetchone()
        )
        if row is None:
            raise HTTPException(404, "Handoff not found.")
        return json_text(row[0])

    @app.get("/api/v1/handoffs")
    def queue_page(
        limit: int = 50, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        org = claims(authorization)["org"]
        rows = (
            connection()
            .execute(
                "SELECT rank, created_at, id, body FROM floor_handoffs WHERE org_id = %s"
                " ORDER BY rank, created_at, id LIMIT %s",
                (org, limit + 1),
            )
            .fetchall()
        )
        page, more = rows[:limit], len(rows) > limit
        cursor = None
        if more:
            rank, created_at, last_id, _ = page[-1]
            position = json.dumps([rank, created_at.isoformat(), last_id]).encode()
            cursor = base64.urlsafe_b64encode(position).decode()
        items = ",".join(row[3] for row in page)
        return json_text(f'{{"items":[{items}],"next_cursor":{json.dumps(cursor)}}}')

    @app.post("/api/v1/handoffs", status_code=201)
    def create(
        body: Annotated[dict[str, Any], Body()],
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        caller = claims(authorization)
        handoff = new_handoff(body, caller)
        text = json.dumps(handoff)
        conn = connection()
        with conn.transaction():
            conn.execute(
                "INSERT INTO floor_handoffs (id, org_id, session_id, rank, created_at, body)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (handoff["id"], caller["org"], body["session_id"],
                 PRIORITY_RANK.get(body.get("priority"), 2), handoff["created_at"], text),
            )  # fmt: skip
        return json_text(text, 201)

    return app


def new_handoff(body: dict[str, Any], caller: dict[str, Any]) -> dict[str, Any]:
    """A new pending handoff as the project's JSON (``HandoffPublic``'s fields)."""
    now = datetime.now(UTC)
    return {
        "id": str(uuid.uuid4()), "org_id": caller["org"], "session_id": body["session_id"],
        "status": "pending", "priority": body.get("priority", "normal"),
        "created_by_id": caller["sub"], "created_by_name": caller["name"],
        "created_at": _stamp(now), "updated_at": _stamp(now),
        "engineer_notes": body.get("engineer_notes", ""), "snapshot": body["snapshot"],
        "assessment_status": "pending", "ai_assessment_data": None,
        "claimed_by_id": None, "claimed_by_name": None, "claimed_at": None,
        "resolved_at": None, "resolution_notes": None,
        "claim_deadline_at": _stamp(now + CLAIM_SLA), "sla_breached_at": None,
        "escalation_level": 0, "escalation_loop": 0,
        "escalation_target": {"target": "all_seniors", "team_id": None, "team_name": None},
        "next_escalation_at": None, "assigned_to_id": None, "assigned_to_name": None,
        "purged_at": None, "redactions": 0,
    }  # fmt: skip


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def serve_plain(port: int) -> None:
    import uvicorn

    app = plain_app(os.environ["FLOOR_DSN"], os.environ["FLOOR_JWT_SECRET"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- starting and filling it ---------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


def libpq_url(database_url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://…``) as libpq takes it."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_floor_table(database_url: str) -> None:
    import psycopg

    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(FLOOR_TABLE)


def fill_floor(database_url: str, handoffs: Iterable[dict[str, Any]]) -> int:
    """Stores each handoff (the project's JSON of it, as the project answered it)
    in ``floor_handoffs``; returns how many."""
    import psycopg

    rows = [
        (h["id"], h["org_id"], h["session_id"], PRIORITY_RANK[h["priority"]], h["created_at"],
         json.dumps(h, separators=(",", ":")))
        for h in handoffs
    ]  # fmt: skip
    with psycopg.connect(libpq_url(database_url)) as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO floor_handoffs (id, org_id, session_id, rank, created_at, body)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )
    return len(rows)


def start_plain(
    stack: ExitStack, *, database_url: str, secret: str, log_dir: Path, env: dict[str, str]
) -> Server:
    """The plain app on a free port of 127.0.0.1 (``floor_handoffs`` created), stopped
    with ``stack``."""
    from bench.common import REPO
    from testkit.procs import base_url, free_port, running, spawn, wait_ready

    create_floor_table(database_url)
    port = free_port()
    argv = [sys.executable, "-m", "bench.floor", "--serve-plain", str(port)]
    plain_env = {**env, "FLOOR_DSN": libpq_url(database_url), "FLOOR_JWT_SECRET": secret,
                 "PYTHONPATH": str(REPO)}  # fmt: skip
    proc = stack.enter_context(
        running(spawn(f"floor-{port}", argv, port=port, log_dir=log_dir, env=plain_env))
    )
    wait_ready(base_url(port), proc=proc)
    return Server(url=base_url(port), pid=proc.popen.pid)


# --- the same INSERT through the project's stack (``POST /bench/floor``) -----------------


def serve_stack(host: str, port: int) -> None:
    """The CLI's ``escalations api``, its app with ``POST /bench/floor`` added."""
    from fastapi import Depends, Response
    from sqlalchemy import text
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


def stack_floor_script(token: str) -> str:
    return (
        'wrk.method = "POST"\nwrk.path = "/bench/floor"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )


# --- run alone -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_plain:
        serve_plain(args.serve_plain)
        return 0
    if args.serve:
        serve_stack("127.0.0.1", args.serve)
        return 0
    from bench.api import Row, create_script, run_wrk
    from bench.common import REPO, install_sigterm_handler
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

    install_sigterm_handler()
    with ExitStack() as stack:
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-floor-")))
        redis = stack.enter_context(running(start_redis(free_port(), log_dir=log_dir)))
        database_url = stack.enter_context(fresh_database(args.pg_admin_url, prefix="bench_floor"))
        import psycopg

        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            conn.execute(STACK_FLOOR_TABLE)
        secret = "bench-floor-" + "x" * 40
        env = api_env(database_url=database_url, redis_url=redis_url(redis.port), jwt_secret=secret)
        env["PYTHONPATH"] = str(REPO)
        port = free_port()
        argv_ = [sys.executable, "-m", "bench.floor", "--serve", str(port)]
        replica = stack.enter_context(
            running(spawn("floor-stack", argv_, port=port, log_dir=log_dir, env=env))
        )
        wait_ready(base_url(port), proc=replica)
        project = Server(url=base_url(port), pid=replica.popen.pid)
        plain = start_plain(
            stack, database_url=database_url, secret=secret, log_dir=log_dir, env=env
        )
        token = bearer(
            secret=secret, sub="engineer-1", name="Bench", role=Role.engineer, org="floor"
        )["Authorization"].removeprefix("Bearer ")
        runs: list[list[Row]] = []
        for run in range(args.runs):
            tag = f"floor-r{run}-{uuid.uuid4().hex[:6]}"
            plan = [
                ("plain: one INSERT", plain, create_script([token], f"{tag}-plain")),
                ("stack: one INSERT", project, stack_floor_script(token)),
                ("create, 1 org", project, create_script([token], f"{tag}-create")),
            ]
            runs.append(
                [
                    run_wrk(name, server.url, script, args, server.pid)
                    for name, server, script in plan
                ]
            )
            print_rows(f"run {run + 1}", runs[-1])
        print_rows(f"medians of {args.runs} runs", median_rows(runs))
        errors = sum(row.errors for rows in runs for row in rows)
        if errors:
            print(f"PROBLEM: {errors} error answers (non-2xx or socket errors)")
        return 1 if errors else 0


def median_rows(runs: list[list[Any]]) -> list[Any]:
    from bench.api import Row

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


def print_rows(title: str, rows: Sequence[Any]) -> None:
    base = rows[0].rate
    print(f"\n{title}")
    header = f"{'path':<20} {'req/s':>9} {'p50':>10} {'p99':>10} {'CPU/req':>10} {'vs plain':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.name:<20} {row.rate:>9.0f} {row.p50_ms:>7.1f} ms {row.p99_ms:>7.1f} ms "
            f"{row.cpu_ms:>7.2f} ms {row.rate / base:>9.2f}"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--pg-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-plain", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
