"""A handoff row as the API shows it (``HandoffPublic``), built cheaply.

Validating the snapshot (every field of every tried step and transcript message
goes through ``StrictModel``'s NUL check) is most of the cost of a
``HandoffPublic``; a queue page of 50 paid it 50 times per read. A snapshot
never changes after the create, so each process keeps the validated one by
handoff id (bounded; the oldest entry goes first). Purging the content
(``shared/retention``) is the one change a snapshot sees, and it sets
``purged_at``: the purged snapshot is kept under a key of its own, so no
process serves the content it still holds for that handoff.

The read routes (get by id, the queue page) go further: they select only the
columns a ``HandoffPublic`` is built from, as plain rows without ORM instances,
and leave the snapshot out of that query; only the snapshots missing from the
cache are read, in one more query (``public_from_rows``).

The read routes answer JSON text, not models: each row's ``HandoffPublic`` JSON
is kept per process (``public_json_from_rows``), keyed by every value of the row
that is not JSON (its id, status, names, timestamps, level, ``purged_at`` …):
any change of a handoff changes one of those (``ai_assessment_data`` is written
with ``assessment_status`` and ``updated_at``; ``escalation_levels`` is written
once, by the create), so a changed row is a new key and never meets the JSON of
its past. A page of unchanged rows is their kept JSON joined.

Events carry the slim view (``HandoffSummary``: no transcript, tried steps or
notes), built by ``handoff_summary``; an event stored before events were slim
holds a full ``HandoffPublic`` and is slimmed when it is read
(``stored_summary``, ``stored_summary_json``).
"""

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, Select, Text, cast, select

from shared.core.db import load_json
from shared.handoffs.models import (
    Handoff,
    HandoffPublic,
    HandoffSummary,
    Snapshot,
    escalation_target,
)

#: Validated snapshots kept per process (a few KiB each).
SNAPSHOT_CACHE_SIZE = 10_000
#: Rows' ``HandoffPublic`` JSON kept per process (a few KiB each), and at most
#: this many characters of it in all (a transcript can make one row large).
JSON_CACHE_SIZE = 10_000
JSON_CACHE_CHARACTERS = 64 * 1024 * 1024

_PUBLIC_FIELDS = tuple(HandoffPublic.model_fields)
#: The fields read as they are from a column of the same name.
_COLUMN_FIELDS = tuple(
    name for name in _PUBLIC_FIELDS if name not in ("snapshot", "escalation_target")
)
_SUMMARY_FIELDS = tuple(HandoffSummary.model_fields)
#: A key of every full ``HandoffPublic`` dict that ``HandoffSummary`` never has:
#: an event stored before events were slim. In JSON text a string cannot hold it
#: unescaped, so only the key itself matches.
_FULL_VIEW_KEY = "engineer_notes"
_FULL_VIEW_PATTERN = re.compile(rf'"{_FULL_VIEW_KEY}"\s*:')
_handoffs = Handoff.__table__.c  # type: ignore[attr-defined]
#: The JSON columns a ``HandoffPublic`` is built from.
_JSON_FIELDS = ("ai_assessment_data", "escalation_levels")
#: Every other field read from a column of the same name: together with the queue
#: rank, what keys a row's kept JSON.
_KEY_FIELDS = tuple(name for name in _COLUMN_FIELDS if name not in _JSON_FIELDS)
_KEY_LENGTH = len(_KEY_FIELDS) + 1
#: What ``public_from_rows`` needs: the key fields, the queue rank (for a page's
#: cursor), then ``ai_assessment_data`` and the levels ``escalation_target`` comes
#: from as JSON text (parsed only for a row whose JSON is not kept).
PUBLIC_COLUMNS = (
    *(_handoffs[name] for name in _KEY_FIELDS),
    _handoffs.priority_rank,
    *(cast(_handoffs[name], Text).label(name) for name in _JSON_FIELDS),
)


class SnapshotCache:
    """Validated snapshots by handoff id, least recently used evicted; thread-safe."""

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._snapshots: OrderedDict[str, Snapshot] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, handoff: Handoff) -> Snapshot:
        key = cache_key(handoff.id, handoff.purged_at)
        snapshot = self.cached(key)
        if snapshot is None:
            snapshot = self.keep(key, handoff.snapshot)
        return snapshot

    def cached(self, handoff_id: str) -> Snapshot | None:
        """The kept snapshot of ``handoff_id``, or None."""
        with self._lock:
            snapshot = self._snapshots.get(handoff_id)
            if snapshot is not None:
                self._snapshots.move_to_end(handoff_id)
            return snapshot

    def keep(self, handoff_id: str, stored: dict[str, Any]) -> Snapshot:
        """``stored`` (the column's value) validated, and kept for ``handoff_id``."""
        snapshot = Snapshot.model_validate(stored)
        with self._lock:
            self._snapshots[handoff_id] = snapshot
            if len(self._snapshots) > self._max_size:
                self._snapshots.popitem(last=False)
        return snapshot


def cache_key(handoff_id: str, purged_at: object) -> str:
    """The snapshot cache's key: the id, or the id marked purged once it is."""
    return handoff_id if purged_at is None else f"{handoff_id}:purged"


_snapshots = SnapshotCache(SNAPSHOT_CACHE_SIZE)


class JsonCache:
    """Rows' JSON text by their key, least recently used evicted past ``max_size``
    rows or ``max_characters`` in all; thread-safe."""

    def __init__(self, max_size: int, max_characters: int = JSON_CACHE_CHARACTERS) -> None:
        self._max_size = max_size
        self._max_characters = max_characters
        self._characters = 0
        self._texts: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> str | None:
        with self._lock:
            text = self._texts.get(key)
            if text is not None:
                self._texts.move_to_end(key)
            return text

    def get_many(self, keys: Sequence[tuple[Any, ...]]) -> list[str | None]:
        """:meth:`get` of each key, under one lock."""
        texts = self._texts
        with self._lock:
            found = [texts.get(key) for key in keys]
            for key, text in zip(keys, found, strict=True):
                if text is not None:
                    texts.move_to_end(key)
        return found

    def keep(self, key: tuple[Any, ...], text: str) -> None:
        if len(text) > self._max_characters:
            return
        with self._lock:
            replaced = self._texts.pop(key, None)
            self._characters += len(text) - (len(replaced) if replaced is not None else 0)
            self._texts[key] = text
            while len(self._texts) > self._max_size or self._characters > self._max_characters:
                self._characters -= len(self._texts.popitem(last=False)[1])


_texts = JsonCache(JSON_CACHE_SIZE)


def row_key(row: Row[Any]) -> tuple[Any, ...]:
    """What identifies a ``select_public()`` row's JSON: its values but the JSON ones."""
    return tuple(row[:_KEY_LENGTH])


def public_json_from_rows(connection: Connection, rows: Sequence[Row[Any]]) -> list[str]:
    """The ``HandoffPublic`` JSON of each row of a ``select_public()`` query (what
    ``model_dump_json()`` of ``public_from_rows``'s models gives), kept per row."""
    keys = [row_key(row) for row in rows]
    texts = _texts.get_many(keys)
    missing = [index for index, text in enumerate(texts) if text is None]
    if missing:
        built = public_from_rows(connection, [rows[index] for index in missing])
        for index, public in zip(missing, built, strict=True):
            texts[index] = text = public.model_dump_json()
            _texts.keep(keys[index], text)
    return texts  # type: ignore[return-value]  # every None was filled


def handoff_public(handoff: Handoff) -> HandoffPublic:
    """``HandoffPublic`` of ``handoff``: the same model ``model_validate(handoff,
    from_attributes=True)`` gives, with the snapshot validated once per process."""
    fields = {name: getattr(handoff, name) for name in _PUBLIC_FIELDS}
    fields["snapshot"] = _snapshots.get(handoff)
    return HandoffPublic.model_validate(fields)


def select_public() -> Select[Any]:
    """``SELECT PUBLIC_COLUMNS FROM handoffs``, for the caller's WHERE and ORDER BY."""
    return select(*PUBLIC_COLUMNS)


def public_from_rows(connection: Connection, rows: Sequence[Row[Any]]) -> list[HandoffPublic]:
    """The ``HandoffPublic`` of each row of a ``select_public()`` query, as
    ``handoff_public`` gives it for the same handoff: the snapshots from the
    cache, those missing from it read in one query."""
    snapshots: dict[str, Snapshot] = {}
    missing = []
    for row in rows:
        snapshot = _snapshots.cached(cache_key(row.id, row.purged_at))
        if snapshot is None:
            missing.append(row.id)
        else:
            snapshots[row.id] = snapshot
    if missing:
        snapshots.update(_read_snapshots(connection, missing))
    return [_public(row, snapshots[row.id]) for row in rows]


def _read_snapshots(connection: Connection, handoff_ids: Iterable[str]) -> dict[str, Snapshot]:
    statement = select(_handoffs.id, _handoffs.snapshot, _handoffs.purged_at).where(
        _handoffs.id.in_(handoff_ids)
    )
    return {
        handoff_id: _snapshots.keep(cache_key(handoff_id, purged_at), stored)
        for handoff_id, stored, purged_at in connection.execute(statement)
    }


def _public(row: Row[Any], snapshot: Snapshot) -> HandoffPublic:
    fields = dict(zip(_KEY_FIELDS, row, strict=False))
    fields["ai_assessment_data"] = _parsed(row.ai_assessment_data)
    fields["snapshot"] = snapshot
    levels = _parsed(row.escalation_levels)
    fields["escalation_target"] = escalation_target(levels, row.escalation_level)
    return HandoffPublic.model_validate(fields)


def _parsed(text: str | None) -> Any:
    return None if text is None else load_json(text)


def handoff_summary(handoff: Handoff) -> dict[str, Any]:
    """``HandoffSummary`` of ``handoff`` as JSON (what an event stores): the snapshot's
    tried steps and transcript are counted, not validated or copied."""
    fields = {name: getattr(handoff, name) for name in _SUMMARY_FIELDS}
    return HandoffSummary.model_validate(fields).model_dump(mode="json")


#: The columns :func:`summary_of_columns` reads (``escalation_target`` is made of two).
SUMMARY_COLUMNS = (
    *(name for name in _SUMMARY_FIELDS if name != "escalation_target"),
    "escalation_levels",
    "escalation_level",
)


def summary_of_columns(columns: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`handoff_summary` of a handoff given as its ``SUMMARY_COLUMNS``
    (a row read without building a ``Handoff``): the same JSON."""
    fields = {name: columns[name] for name in _SUMMARY_FIELDS if name != "escalation_target"}
    fields["escalation_target"] = escalation_target(
        columns["escalation_levels"], columns["escalation_level"]
    )
    return HandoffSummary.model_validate(fields).model_dump(mode="json")


def stored_summary(stored: dict[str, Any]) -> dict[str, Any]:
    """An event's stored handoff as events carry it: as stored, or slimmed when it
    is a full handoff (an event stored before events were slim)."""
    if _FULL_VIEW_KEY not in stored:
        return stored
    return HandoffSummary.model_validate(stored).model_dump(mode="json")


def stored_summary_json(stored: str) -> str:
    """:func:`stored_summary` of an event's stored handoff JSON text: the text
    itself (never decoded) unless it is a full handoff."""
    if not _FULL_VIEW_PATTERN.search(stored):
        return stored
    return json.dumps(stored_summary(json.loads(stored)), separators=(",", ":"))
