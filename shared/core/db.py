"""Engine and session factories. Built on demand, never at import time, so
tests can point them elsewhere and forked workers can build their own."""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import psycopg
import pydantic_core
from sqlalchemy import Connection, CursorResult, Dialect, Engine, Result, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, select

Row = TypeVar("Row", bound=SQLModel)

SQLITE_BUSY_TIMEOUT_SECONDS = 30
#: Per process: connections kept open once opened, and how many more a burst may open
#: (and close again). The API does a request's database work in one threadpool hop, so
#: a request holds a connection only while it talks to the database; more requests in
#: flight than this wait for one (``pool_timeout``) instead of opening and closing a
#: connection each. 10 per process leaves PostgreSQL's default 100 room for several
#: replicas, workers and test runs (a 200-claim storm over two replicas at 40 each, and
#: at 20 each beside other test suites on the same server, ran it out of connections).
POOL_SIZE = 10
POOL_OVERFLOW = 0
#: psycopg's own default: a query is prepared on its fifth run on a connection.
PREPARE_THRESHOLD = 5


def make_engine(
    database_url: str, *, pre_ping: bool = True, prepared_statements: bool = False
) -> Engine:
    """An engine for ``database_url``. PostgreSQL connections prepare statements
    on the server (psycopg's default: after five runs of a query on a connection)
    only with ``prepared_statements`` (the ``database_prepared_statements``
    setting, for direct connections): behind PgBouncer in transaction mode the
    next transaction may run on another server connection, where the prepared
    name is missing or taken. Nothing else relies on session state either (no
    SET, LISTEN or session advisory lock).

    ``pre_ping=False`` skips the round trip that tests each pooled connection on
    checkout (the API's choice, see docs/decisions.md): after the database
    restarts, the first statement on a dead connection fails (the API answers
    503) and SQLAlchemy then invalidates every connection pooled before it, so the
    errors end there."""
    if database_url.startswith("sqlite"):
        return _make_sqlite_engine(database_url)
    return create_engine(
        database_url,
        pool_pre_ping=pre_ping,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        pool_timeout=30,
        connect_args={"prepare_threshold": PREPARE_THRESHOLD if prepared_statements else None},
        json_deserializer=load_json,
    )


def load_json(data: str | bytes) -> Any:
    """A JSON column's value, parsed by pydantic-core: ten times quicker than
    ``json.loads`` on small values (a queue page parses two per row). The few
    documents it refuses and ``json.loads`` takes (a lone surrogate escape, which
    a column written from Python can hold) go to ``json.loads``."""
    try:
        return pydantic_core.from_json(data)
    except ValueError:
        return json.loads(data)


def _make_sqlite_engine(database_url: str) -> Engine:
    engine = create_engine(
        database_url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        json_deserializer=load_json,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, emit BEGIN (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # BEGIN IMMEDIATE takes the write lock up front: a transaction that reads
        # then writes would otherwise fail with SQLITE_BUSY instead of waiting.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def autocommit_reads(engine: Engine) -> Engine:
    """``engine`` for work that only reads, one statement at a time: on
    PostgreSQL without BEGIN and ROLLBACK (two round trips fewer per request; at
    READ COMMITTED each statement saw its own snapshot inside a transaction too).
    SQLite keeps its transactions (autocommit is not how its engine is set up)."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def rows_changed(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (``execute`` is typed as returning a plain
    ``Result``; for these statements it is a ``CursorResult``)."""
    return cast(CursorResult[Any], result).rowcount


@contextmanager
def session_scope(engine: Engine | Connection) -> Iterator[Session]:
    """A session that rolls back on error and always closes. On a ``Connection``
    (one checkout for several transactions) its commits commit that connection."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise


@contextmanager
def driver_autocommit(connection: Connection) -> Iterator[psycopg.Connection[Any]]:
    """PostgreSQL: ``connection``'s psycopg connection, in autocommit for the
    block (nothing may be begun on it): a statement is its own transaction,
    committed by the server with it, and the statements of a pipeline are one
    transaction, committed at the pipeline's one ``Sync``. Either way no
    ``BEGIN`` or ``COMMIT`` is sent: one round trip, where a transaction in a
    pipeline takes two (psycopg syncs once more when the pipeline ends).

    A connection whose mode cannot be set back (lost, or interrupted in the
    middle of a statement) is invalidated, so it is never pooled again, and
    never in autocommit; the block's own error is what propagates."""
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    raw.autocommit = True
    try:
        yield raw
    finally:
        try:
            raw.autocommit = False
        except psycopg.Error:
            connection.invalidate()


def is_uuid(value: str) -> bool:
    """Whether ``value`` is a UUID in canonical form (the only ids this service makes)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def load_in_org(
    session: Session, model: type[Row], *, org_id: str, row_id: str, for_update: bool = False
) -> Row | None:
    """The ``model`` row with id ``row_id`` in ``org_id`` (fresh from the database);
    None for another org's row, or for an id that is not a canonical UUID, so a
    malformed id is a plain not-found, never a database error."""
    if not is_uuid(row_id):
        return None
    columns: Any = model
    statement = select(model).where(columns.id == row_id, columns.org_id == org_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement.execution_options(populate_existing=True)).first()


def dialect_insert(bind: Connection | Engine) -> Any:
    """The dialect's ``insert`` (PostgreSQL's or SQLite's), for ``on_conflict_do_*`` upserts."""
    if bind.dialect.name == "postgresql":
        return postgresql.insert
    if bind.dialect.name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database dialect {bind.dialect.name!r}")


class DriverStatement:
    """A statement compiled once for PostgreSQL (psycopg) and run on the
    driver's connection under a SQLAlchemy ``Connection``: without SQLAlchemy's
    execution context, result object and per-run parameter processing (for the
    create's 40-odd parameters those cost as much as psycopg's own work). The
    parameters go through the same bind processors (a JSON value becomes
    psycopg's ``Json``).

    On a driver error the statement runs again through SQLAlchemy, which raises
    its own exception class (``IntegrityError``, ``OperationalError``: the API's
    503) and invalidates a dropped pool as on every other path. Only for
    statements that run alone on an autocommit connection: a failed statement
    wrote nothing, so running it again is safe."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.statement = statement
        self.sql: str = compiled.string
        self._defaults = dict(compiled.params)
        # The dialect's own type: a generic ``JSON``'s processor is psycopg's
        # (``_PGJSON``: the value wrapped in ``Json``), the generic one has none.
        self._processors = {
            name: process
            for name, bind in compiled.binds.items()
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }

    def first(self, connection: Connection, parameters: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row the statement returns (None: no row)."""
        values = self._defaults | parameters
        for name, process in self._processors.items():
            values[name] = process(values[name])
        driver = connection.connection.driver_connection
        try:
            return driver.execute(self.sql, values).fetchone()  # type: ignore[union-attr]
        except psycopg.Error:
            row = connection.execute(self.statement, parameters).first()
            return None if row is None else tuple(row)
