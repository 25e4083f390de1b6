"""Reuse FastAPI's per-field pydantic schemas across the app instances of one test process.

FastAPI 0.16x builds each route's fields (a pydantic ``TypeAdapter`` per parameter, body
and response model) lazily, per app, on the route's first request. A service builds
one app per process and pays that once; the test suite builds an app per test (about
1,100 in the fast loop) and paid it in every test: a quarter of the fast loop's CPU,
most of a test's first request (40-250 ms of it). The adapters depend only on the
field's annotation, metadata and config, which are the same objects' reprs in every
app built from the same routers, so the process keeps one per distinct field.

A wrong reuse could only make validation stricter or looser for some field, which the
API tests would see; production code does not import this module."""

from typing import Any

try:  # a private module of FastAPI's: without it (another release) nothing is reused
    from fastapi._compat import v2
except ImportError:  # pragma: no cover
    v2 = None

_plain_type_adapter = getattr(v2, "TypeAdapter", None)
_adapters: dict[tuple[str, str], Any] = {}


def _shared_type_adapter(annotation: Any, *, config: Any = None) -> Any:
    key = (repr(annotation), repr(config))
    adapter = _adapters.get(key)
    if adapter is None:
        adapter = _adapters[key] = _plain_type_adapter(annotation, config=config)
    return adapter


def reuse_field_schemas() -> None:
    """Install the memo (idempotent)."""
    if _plain_type_adapter is None:
        return
    v2.TypeAdapter = _shared_type_adapter  # type: ignore[misc,assignment]
