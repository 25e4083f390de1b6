"""The service's database engine behind PgBouncer in transaction mode: the
same queries, over and over, from many threads, as a busy replica runs them.
(psycopg prepares a statement on the server after five runs; in transaction
mode the next transaction may land on another server connection, where that
name is missing or already taken.) The e2e event and claim tests also run
through PgBouncer (``served_database_url``)."""

import threading

from sqlalchemy import text

from shared.core.db import make_engine, session_scope
from shared.events.record import latest_seq

THREADS = 20
COUNT = text("SELECT count(*) FROM handoffs WHERE org_id = :org_id")
TRANSACTIONS = 50


def test_repeated_queries_from_many_threads_work_through_pgbouncer(pgbouncer_url: str) -> None:
    engine = make_engine(pgbouncer_url)
    failures: list[str] = []

    def work(thread: int) -> None:
        try:
            for n in range(TRANSACTIONS):
                with session_scope(engine) as session:
                    latest_seq(session, org_id=f"org-{(thread + n) % 3}")
                with engine.begin() as connection:
                    connection.execute(
                        text("SELECT count(*) FROM handoffs WHERE org_id = :o"), {"o": "x"}
                    )
        except Exception as exc:  # every failure is reported, not only the first
            failures.append(repr(exc)[:300])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    assert failures == []
