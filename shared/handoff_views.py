"""A handoff row as the API shows it (``HandoffPublic``), built cheaply.

Validating the snapshot (every field of every tried step and transcript message
goes through ``StrictModel``'s NUL check) is most of the cost of a
``HandoffPublic``; a queue page of 50 paid it 50 times per read. A snapshot
never changes after the create, so each process keeps the validated one by
handoff id (bounded; the oldest entry goes first).
"""

import threading
from collections import OrderedDict

from shared.models import Handoff, HandoffPublic, Snapshot

#: Validated snapshots kept per process (a few KiB each).
SNAPSHOT_CACHE_SIZE = 10_000

_PUBLIC_FIELDS = tuple(HandoffPublic.model_fields)


class SnapshotCache:
    """Validated snapshots by handoff id, least recently used evicted; thread-safe."""

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._snapshots: OrderedDict[str, Snapshot] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, handoff: Handoff) -> Snapshot:
        with self._lock:
            snapshot = self._snapshots.get(handoff.id)
            if snapshot is not None:
                self._snapshots.move_to_end(handoff.id)
                return snapshot
        snapshot = Snapshot.model_validate(handoff.snapshot)
        with self._lock:
            self._snapshots[handoff.id] = snapshot
            if len(self._snapshots) > self._max_size:
                self._snapshots.popitem(last=False)
        return snapshot


_snapshots = SnapshotCache(SNAPSHOT_CACHE_SIZE)


def handoff_public(handoff: Handoff) -> HandoffPublic:
    """``HandoffPublic`` of ``handoff``: the same model ``model_validate(handoff,
    from_attributes=True)`` gives, with the snapshot validated once per process."""
    fields = {name: getattr(handoff, name) for name in _PUBLIC_FIELDS}
    fields["snapshot"] = _snapshots.get(handoff)
    return HandoffPublic.model_validate(fields)
