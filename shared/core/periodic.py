"""Periodic sweeps: what each package asks the workers' maintenance pass to run.

A package declares its sweeps in its own ``periodic.py`` (``SWEEPS``); the worker
runs every package's, each on its own (one failing does not skip the others).
"""

from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis
from sqlalchemy import Engine

from shared.core.settings import Settings


@dataclass(frozen=True)
class SweepContext:
    engine: Engine
    redis: Redis
    settings: Settings


@dataclass(frozen=True)
class Sweep:
    """``run`` returns what to log (a count or a report), or something falsy when
    there was nothing to do (or another worker did it)."""

    name: str
    run: Callable[[SweepContext], object]
