"""Throwaway PostgreSQL databases for tests and benchmarks: created, migrated,
and dropped (connections forced off) however the caller exits."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url

from shared.core.migrate import upgrade_to_head


def libpq_dsn(sqlalchemy_url: str) -> str:
    """The same server and database as a psycopg (libpq) connection string."""
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


@contextmanager
def fresh_database(admin_url: str, *, prefix: str = "escalations") -> Iterator[str]:
    """A new database next to ``admin_url``'s, migrated to head; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin_dsn = libpq_dsn(admin_url)
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        upgrade_to_head(url)
        yield url
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
