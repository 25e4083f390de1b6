"""One org's redaction: the built-in detectors plus the org's own patterns,
applied to a text or to every text field of a create.

Each secret becomes ``[redacted: <kind>]`` (an org pattern's kind is its name);
the count says how many, never what. Org patterns run on the ``regex`` library
with a time bound: a create spends at most ``budget_seconds`` on them in all,
and a field whose patterns did not finish in time is replaced whole by
``[redacted: <name>]`` (fail closed: text that could not be checked is not
stored). ``compile_pattern`` refuses, when an admin saves it, a pattern that
does not compile, matches the empty string, or is slow on inputs that make
backtracking patterns explode.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import regex
from annotated_types import MaxLen
from pydantic import BaseModel

from shared.core.errors import InvalidInput
from shared.handoffs.models import HandoffCreate, Snapshot, TranscriptMessage, TriedStep
from shared.redaction.detectors import Span, find_secrets, merge

log = logging.getLogger(__name__)

MAX_PATTERN_LENGTH = 500
#: A create's time for all its fields' org patterns, together.
DEFAULT_BUDGET_SECONDS = 0.25
#: What a pattern must get through, each within ``PROBE_TIMEOUT_SECONDS``, to be saved:
#: long runs that make nested or overlapping quantifiers backtrack exponentially.
PROBES = (
    "a" * 5_000 + "!",
    "x" * 5_000,
    "0" * 5_000 + "x",
    "word " * 1_000 + "!",
    "a-" * 2_500 + "!",
)
PROBE_TIMEOUT_SECONDS = 0.05


def marker(kind: str) -> str:
    return f"[redacted: {kind}]"


@dataclass(frozen=True)
class OrgPattern:
    name: str
    source: str
    compiled: "regex.Pattern[str]" = field(compare=False, repr=False)


def compile_pattern(name: str, source: str) -> OrgPattern:
    """``source`` compiled, or ``InvalidInput``: ``invalid_redaction_pattern`` (too
    long, or not a regular expression), ``redaction_pattern_matches_empty``,
    ``redaction_pattern_too_slow`` (a probe took longer than its bound)."""
    if len(source) > MAX_PATTERN_LENGTH:
        raise _refused(
            "invalid_redaction_pattern", name, f"is over {MAX_PATTERN_LENGTH} characters"
        )
    try:
        compiled = regex.compile(source)
    except (regex.error, OverflowError, RecursionError) as exc:
        raise _refused("invalid_redaction_pattern", name, f"does not compile: {exc}") from exc
    if compiled.search("", timeout=PROBE_TIMEOUT_SECONDS) is not None:
        raise _refused("redaction_pattern_matches_empty", name, "matches the empty string")
    for probe in PROBES:
        try:
            for _ in compiled.finditer(probe, timeout=PROBE_TIMEOUT_SECONDS):
                pass
        except TimeoutError as exc:
            raise _refused(
                "redaction_pattern_too_slow", name, "backtracks too much on long input"
            ) from exc
    return OrgPattern(name, source, compiled)


def _refused(code: str, name: str, why: str) -> InvalidInput:
    return InvalidInput(f"Redaction pattern {name!r} {why}.", code=code, pattern=name)


@dataclass(frozen=True)
class Redactor:
    """How one org's text is redacted. ``enabled`` false: nothing is."""

    enabled: bool = True
    patterns: tuple[OrgPattern, ...] = ()
    budget_seconds: float = DEFAULT_BUDGET_SECONDS

    def start(self) -> "Pass":
        """A pass over one request's fields, sharing one time budget and count."""
        return Pass(self, time.monotonic() + self.budget_seconds)

    def redact(self, text: str, limit: int | None = None) -> tuple[str, int]:
        """``text`` redacted (cut to ``limit``, as ``Pass.text``), and how many
        secrets were replaced."""
        run = self.start()
        return run.text(text, limit), run.count


class Pass:
    """One request's redaction: its fields share the org patterns' time budget,
    and ``count`` adds up the secrets replaced in all of them."""

    def __init__(self, redactor: Redactor, deadline: float) -> None:
        self._redactor = redactor
        self._deadline = deadline
        self.count = 0

    def text(self, value: str, limit: int | None = None) -> str:
        """``value`` redacted; cut to ``limit`` characters if the markers made it
        longer than its field allows."""
        if not self._redactor.enabled or not value:
            return value
        spans = find_secrets(value)
        if self._redactor.patterns:
            # Stable: at the same start, the longer span, then the built-in one, names the kind.
            both = [*spans, *self._org_spans(value)]
            spans = merge(sorted(both, key=lambda span: (span.start, -span.end)))
        self.count += len(spans)
        redacted = _replaced(value, spans)
        if limit is not None and len(redacted) > limit:
            redacted = redacted[: limit - 1] + "…"
        return redacted

    def _org_spans(self, value: str) -> list[Span]:
        spans = []
        for pattern in self._redactor.patterns:
            remaining = self._deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                matches = list(pattern.compiled.finditer(value, timeout=remaining))
            except TimeoutError:
                log.warning("redaction pattern %r ran out of time; field withheld", pattern.name)
                return [Span(0, len(value), pattern.name)]
            spans += [
                Span(m.start(), m.end(), pattern.name) for m in matches if m.end() > m.start()
            ]
        return spans


def _replaced(text: str, spans: Sequence[Span]) -> str:
    parts, position = [], 0
    for span in spans:
        parts += [text[position : span.start], marker(span.kind)]
        position = span.end
    parts.append(text[position:])
    return "".join(parts)


def max_length(model: type[BaseModel], name: str) -> int | None:
    """The ``max_length`` of ``model``'s field ``name``, if it has one."""
    return next(
        (item.max_length for item in model.model_fields[name].metadata if isinstance(item, MaxLen)),
        None,
    )


_SUMMARY = max_length(Snapshot, "problem_summary")
_DESCRIPTION = max_length(TriedStep, "description")
_OUTCOME = max_length(TriedStep, "outcome")
_CONTENT = max_length(TranscriptMessage, "content")
_NOTES = max_length(HandoffCreate, "engineer_notes")


def redact_create(body: HandoffCreate, redactor: Redactor) -> tuple[HandoffCreate, int]:
    """``body`` with its text redacted (problem summary, tried steps'
    descriptions and outcomes, transcript messages, engineer notes), and how many
    secrets that replaced in all."""
    run = redactor.start()
    snapshot = body.snapshot
    steps = [
        step.model_copy(
            update={
                "description": run.text(step.description, _DESCRIPTION),
                "outcome": run.text(step.outcome, _OUTCOME),
            }
        )
        for step in snapshot.tried_steps
    ]
    transcript = (
        None
        if snapshot.transcript is None
        else [
            message.model_copy(update={"content": run.text(message.content, _CONTENT)})
            for message in snapshot.transcript
        ]
    )
    redacted_snapshot = snapshot.model_copy(
        update={
            "problem_summary": run.text(snapshot.problem_summary, _SUMMARY),
            "tried_steps": steps,
            "transcript": transcript,
        }
    )
    redacted = body.model_copy(
        update={
            "engineer_notes": run.text(body.engineer_notes, _NOTES),
            "snapshot": redacted_snapshot,
        }
    )
    return redacted, run.count
