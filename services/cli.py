"""The ``escalations`` command: api, worker, migrate, token."""

import gc
import logging
import signal
from datetime import timedelta
from typing import Annotated

import typer
from pydantic import ValidationError

from services.demo_routing import DEFAULT_LEVEL_SECONDS
from shared.auth.tokens import issue_bearer_token
from shared.core.logs import configure_logging
from shared.core.models import Role
from shared.core.settings import Settings, get_settings

app = typer.Typer(help="Escalation Mode: escalate stuck sessions to senior engineers, live.")


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        messages = "; ".join(error["msg"] for error in exc.errors())
        typer.echo(f"configuration error: {messages}", err=True)
        raise typer.Exit(2) from exc


def _configure_logging(settings: Settings) -> None:
    if settings.log_format == "json":
        configure_logging(settings.log_level)
        return
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the HTTP API (one replica; run several behind a proxy)."""
    import uvicorn

    from services.api.app import create_app
    from services.api.server import bounded_protocol

    settings = _settings()
    _configure_logging(settings)
    app = create_app(settings)
    _tune_gc_for_streams()
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=bounded_protocol(
            max_head_bytes=settings.max_header_bytes,
            head_timeout_seconds=settings.header_timeout_seconds,
        ),
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the JSON logging configured above
        access_log=False,  # RequestObservation logs requests without query values
        timeout_graceful_shutdown=10,
    )


def _tune_gc_for_streams() -> None:
    """Thousands of open streams keep many objects alive, and the cyclic GC's
    frequent passes over them cost 12-23% of the CPU spent per event at 2,500
    streams (bench/fanout.py). Freeze what start-up built and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit once the queue is empty.")] = False,
    worker_class: Annotated[
        str, typer.Option(help="simple (default), fork or spawn: see docs/decisions.md.")
    ] = "simple",
    name: Annotated[str | None, typer.Option(help="Worker name shown in rq-dashboard.")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    queues: Annotated[
        str,
        typer.Option(
            help="Which pool: assessments, notifications, or both (comma-separated), as served."
        ),
    ] = "assessments,notifications",
) -> None:
    """Run a worker (RQ, queues `assessments` then `notifications`, or one of them) with its
    retry mover, reconcilers and webhook dispatcher; webhook tries run many at once."""
    from services.worker.main import WORKER_CLASSES, parse_queues, run_worker

    if worker_class not in WORKER_CLASSES:
        typer.echo(f"unknown worker class {worker_class!r}: {', '.join(WORKER_CLASSES)}", err=True)
        raise typer.Exit(2)
    try:
        served = parse_queues(queues)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    settings = _settings()
    _configure_logging(settings)
    run_worker(
        settings,
        queues=served,
        burst=burst,
        worker_class=worker_class,
        name=name,
        metrics_port=metrics_port,
    )


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Interface for the API.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the API.")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(help="Play a demo scenario on the queue, with a team and a two-level policy."),
    ] = False,
    demo_level_seconds: Annotated[
        int,
        typer.Option(
            min=1, max=86_400, help="With --demo: seconds before an unclaimed escalation moves up."
        ),
    ] = DEFAULT_LEVEL_SECONDS,
) -> None:
    """Run everything on this machine: embedded Redis, SQLite, an API and a worker."""
    from services.demo import DEMO_SETTINGS, DemoPlayer, start_demo
    from services.local import LocalStack, StartupError, banner

    # Stop on Ctrl-C and SIGTERM alike, also when started with SIGINT ignored (`nohup`, `&` in
    # a script): Python then installs no KeyboardInterrupt handler of its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stack = LocalStack(host=host, port=port, defaults=DEMO_SETTINGS if demo else {})
    player: DemoPlayer | None = None
    code = 0
    try:
        stack.start()
        notes: list[str] = []
        if demo:
            player, notes = start_demo(stack, level_seconds=demo_level_seconds)
        typer.echo(banner(stack, notes))
        if player is not None:
            player.start()
        code = stack.wait()
        typer.echo(f"a process exited ({code}); stopping", err=True)
    except KeyboardInterrupt:
        typer.echo("\nstopping…", err=True)
    except StartupError as exc:
        typer.echo(f"could not start: {exc}", err=True)
        code = 1
    finally:
        if player is not None:
            player.stop()
        stack.stop()
    raise typer.Exit(code)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to run again)."""
    from shared.core.migrate import upgrade_to_head

    settings = _settings()
    _configure_logging(settings)
    upgrade_to_head(settings.database_url)
    typer.echo("database is up to date")


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="User id.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    role: Annotated[Role, typer.Option(help="engineer, senior or admin.")],
    org: Annotated[str, typer.Option(help="Tenant (org) id.")],
    ttl_hours: Annotated[float, typer.Option(help="Lifetime in hours.")] = 12.0,
) -> None:
    """Print a JWT signed with ESCALATIONS_JWT_SECRET (with the configured issuer
    and audience), valid at most ESCALATIONS_JWT_MAX_LIFETIME_SECONDS."""
    settings = _settings()
    ttl = timedelta(hours=ttl_hours)
    if not 0 < ttl.total_seconds() <= settings.jwt_max_lifetime_seconds:
        raise typer.BadParameter(
            f"must be more than 0 and at most {settings.jwt_max_lifetime_seconds / 3600:g} hours "
            "(ESCALATIONS_JWT_MAX_LIFETIME_SECONDS); longer tokens would be refused",
            param_hint="'--ttl-hours'",
        )
    typer.echo(issue_bearer_token(settings, sub=sub, name=name, role=role, org=org, ttl=ttl))


if __name__ == "__main__":
    app()
