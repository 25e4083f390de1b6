"""The org's redaction settings, and the redactor each create uses.

``RedactorCache`` keeps each org's compiled ``Redactor`` for ``ttl_seconds`` in
the process, so a create reads no settings row while the entry is fresh. A
``PUT`` drops the entry on the replica that served it at once; the other
replicas use the new settings within ``ttl_seconds``
(``ESCALATIONS_REDACTION_CACHE_SECONDS``).
"""

import logging
import threading
import time

import regex
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from shared import audit
from shared.auth.tokens import Principal
from shared.core.timeutil import utcnow
from shared.redaction.models import (
    RedactionPatternPublic,
    RedactionSettings,
    RedactionSettingsBody,
    RedactionSettingsPublic,
)
from shared.redaction.redactor import (
    DEFAULT_BUDGET_SECONDS,
    OrgPattern,
    Redactor,
    compile_pattern,
)

log = logging.getLogger(__name__)


def get_settings(*, session: Session, org_id: str) -> RedactionSettingsPublic:
    """The org's settings; the defaults (enabled, no patterns) when it set none."""
    return _public(session.get(RedactionSettings, org_id))


def put_settings(
    *,
    session: Session,
    actor: Principal,
    body: RedactionSettingsBody,
    cache: "RedactorCache | None" = None,
) -> RedactionSettingsPublic:
    """Replace the actor's org's settings, committed with its audit row
    (``redaction.updated``). Every pattern is compiled and probed first
    (``shared.redaction.redactor.compile_pattern``'s 422s); nothing is stored
    unless all pass."""
    for pattern in body.patterns:
        compile_pattern(pattern.name, pattern.regex)
    try:
        after = _replace(session, actor, body)
    except IntegrityError:  # another admin's first PUT inserted the row just now
        session.rollback()
        after = _replace(session, actor, body)
    if cache is not None:
        cache.forget(actor.org_id)
    return after


def _replace(
    session: Session, actor: Principal, body: RedactionSettingsBody
) -> RedactionSettingsPublic:
    org_id = actor.org_id
    row = session.get(RedactionSettings, org_id, with_for_update=True)
    before = _public(row)
    if row is None:
        row = RedactionSettings(org_id=org_id, patterns=[])
    row.enabled, row.updated_at = body.enabled, utcnow()
    row.patterns = [pattern.model_dump() for pattern in body.patterns]
    session.add(row)
    after = _public(row)
    audit.record(
        session, org_id=org_id, actor=actor, kind="redaction.updated", before=before, after=after
    )
    session.commit()
    return after


def _public(row: RedactionSettings | None) -> RedactionSettingsPublic:
    if row is None:
        return RedactionSettingsPublic(enabled=True, patterns=[], updated_at=None)
    return RedactionSettingsPublic(
        enabled=row.enabled,
        patterns=[RedactionPatternPublic.model_validate(item) for item in row.patterns],
        updated_at=row.updated_at,
    )


def load_redactor(
    *, session: Session, org_id: str, budget_seconds: float = DEFAULT_BUDGET_SECONDS
) -> Redactor:
    """The org's redactor, read from its settings row now."""
    row = session.get(RedactionSettings, org_id)
    if row is None:
        return Redactor(budget_seconds=budget_seconds)
    patterns = tuple(
        pattern for item in row.patterns if (pattern := _stored_pattern(org_id, item)) is not None
    )
    return Redactor(enabled=row.enabled, patterns=patterns, budget_seconds=budget_seconds)


def _stored_pattern(org_id: str, item: dict[str, str]) -> OrgPattern | None:
    # Compiled when saved; the probes are not run again on each load.
    try:
        return OrgPattern(item["name"], item["regex"], regex.compile(item["regex"]))
    except (regex.error, KeyError):
        log.warning("org %s has a stored redaction pattern that no longer compiles", org_id)
        return None


class RedactorCache:
    """Each org's ``Redactor`` for ``ttl_seconds`` (0: read every time); thread-safe."""

    def __init__(
        self, *, ttl_seconds: float, budget_seconds: float = DEFAULT_BUDGET_SECONDS
    ) -> None:
        self._ttl = ttl_seconds
        self._budget = budget_seconds
        self._entries: dict[str, tuple[float, Redactor]] = {}
        self._lock = threading.Lock()

    def redactor(self, *, session: Session, org_id: str) -> Redactor:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(org_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        redactor = load_redactor(session=session, org_id=org_id, budget_seconds=self._budget)
        if self._ttl > 0:
            with self._lock:
                self._entries[org_id] = (now + self._ttl, redactor)
        return redactor

    def forget(self, org_id: str) -> None:
        with self._lock:
            self._entries.pop(org_id, None)


def redactor_for(*, session: Session, org_id: str, cache: RedactorCache | None) -> Redactor:
    """From ``cache`` when given, else read now."""
    if cache is None:
        return load_redactor(session=session, org_id=org_id)
    return cache.redactor(session=session, org_id=org_id)
