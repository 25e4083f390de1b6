"""The worker process keeps its own Redis client's settings: RQ's work loop gets
a client of its own, so RQ raising its socket timeout for the blocking dequeue
never reaches the client the relay, maintenance and jobs share (whose 5 s
timeout makes a dead Redis fail fast there)."""

from sqlalchemy import Engine

from services.worker.context import get_context, set_context
from services.worker.main import run_worker
from shared.core.redis_client import SOCKET_TIMEOUT_SECONDS
from shared.core.settings import Settings


def test_rq_leaves_the_shared_clients_socket_timeout_alone(
    settings: Settings, engine: Engine
) -> None:
    run_worker(settings.model_copy(update={"assessor": "heuristic"}), burst=True)
    try:
        shared_pool = get_context().redis.connection_pool
        assert shared_pool.connection_kwargs["socket_timeout"] == SOCKET_TIMEOUT_SECONDS
    finally:
        set_context(None)
