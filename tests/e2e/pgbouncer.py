"""A private PgBouncer (Debian's ``pgbouncer``) in transaction mode in front of
the test PostgreSQL server, for end-to-end tests of the service behind a pooler.

In transaction mode each transaction may run on another server connection, so
nothing may rely on session state: no server-side prepared statements (the
service turns psycopg's off), no session advisory locks, no LISTEN, no SET.
"""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from testkit.procs import HOST, ProcessError, free_port, spawn, wait_until

#: pgbouncer refuses to run as root; the PostgreSQL package's user is on every such machine.
RUN_AS = "postgres"


def pgbouncer_binary() -> str:
    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if binary is None:
        raise ProcessError("pgbouncer is not installed (.ci/run installs Debian's pgbouncer)")
    return binary


@contextmanager
def pgbouncer_in_front_of(database_url: str, *, workdir: Path) -> Iterator[str]:
    """Run PgBouncer (transaction pooling) for ``database_url``'s server; yields
    the same database's URL through PgBouncer. ``workdir`` must be reachable by
    RUN_AS (e.g. made by ``tempfile.mkdtemp()``, not under pytest's private tmp)."""
    url = make_url(database_url)
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)  # pgbouncer reads its files as RUN_AS: no folder above may be private
    port = free_port()
    users = workdir / "users.txt"
    users.write_text(f'"{url.username}" ""\n')
    config = workdir / "pgbouncer.ini"
    config.write_text(
        "\n".join([
            "[databases]",
            f"* = host={url.host} port={url.port or 5432}",
            "[pgbouncer]",
            f"listen_addr = {HOST}",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {users}",
            "pool_mode = transaction",
            "max_client_conn = 1000",
            "default_pool_size = 20",
            "ignore_startup_parameters = extra_float_digits,options",
            "",
        ])
    )  # fmt: skip
    for path in (users, config):
        path.chmod(0o644)
    proc = spawn(
        f"pgbouncer-{port}",
        [pgbouncer_binary(), "-u", RUN_AS, str(config)],
        port=port,
        log_dir=workdir,
    )
    pooled = url.set(port=port).render_as_string(hide_password=False)
    try:
        wait_until(lambda: _answers(pooled), proc=proc, what="a query through pgbouncer")
        yield pooled
    finally:
        proc.stop()


def _answers(url: str) -> bool:
    import psycopg

    from testkit.pg import libpq_dsn

    try:
        with psycopg.connect(libpq_dsn(url), connect_timeout=1) as connection:
            return connection.execute("SELECT 1").fetchone() == (1,)
    except psycopg.Error:
        return False
