"""Per-process resources of a worker: settings, database engine, Redis client
and assessor. Built on first use in the process that uses them, and dropped
(without closing the parent's connections) in any forked child, so a forking
RQ worker's work horse never shares a socket with its parent."""

import os
from dataclasses import dataclass, field

from redis import Redis
from sqlalchemy import Engine

from services.worker.assessors import make_assessor
from services.worker.assessors.base import Assessor
from services.worker.delivery_pool import DeliveryPool
from shared.core.db import make_engine
from shared.core.redis_client import redis_for
from shared.core.settings import Settings, get_settings


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    redis: Redis
    assessor: Assessor
    #: Set in a worker serving ``notifications``: webhook tries run there, many at once.
    delivery_pool: DeliveryPool | None = field(default=None)

    @classmethod
    def build(cls, settings: Settings) -> "WorkerContext":
        return cls(
            settings=settings,
            # No ping per checkout: the job's first statement finds a dropped
            # connection and runs again on a new one (shared/assessments/service.py).
            engine=make_engine(
                settings.database_url,
                pre_ping=False,
                prepared_statements=settings.database_prepared_statements,
            ),
            redis=redis_for(settings),
            assessor=make_assessor(settings),
        )

    def close(self) -> None:
        self.redis.close()
        self.engine.dispose()


_context: WorkerContext | None = None


def get_context() -> WorkerContext:
    global _context
    if _context is None:
        _context = WorkerContext.build(get_settings())
    return _context


def set_context(context: WorkerContext | None) -> None:
    """For tests and for ``escalations worker``, which builds it from its settings."""
    global _context
    _context = context


def _forget_in_child() -> None:
    global _context
    if _context is not None:
        _context.engine.dispose(close=False)  # the parent keeps using these connections
    _context = None


os.register_at_fork(after_in_child=_forget_in_child)
