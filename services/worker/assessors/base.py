"""The assessor interface: what every assessment generator receives and returns."""

from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.handoffs.models import ConfidenceTier


@dataclass(frozen=True)
class PastResolution:
    """A resolved handoff of the same org: what the problem was and what fixed it."""

    handoff_id: str
    problem_summary: str
    problem_domain: str
    engineer_notes: str
    tried_steps: list[str]
    resolution_notes: str


@dataclass(frozen=True)
class AssessmentRequest:
    """Everything an assessor may use. ``snapshot`` is the handoff's snapshot as
    stored (``shared.handoffs.models.Snapshot`` in JSON form)."""

    handoff_id: str
    priority: str
    engineer_notes: str
    snapshot: dict[str, Any]
    past_resolutions: list[PastResolution] = field(default_factory=list)


@dataclass(frozen=True)
class AssessmentResult:
    summary: str
    likely_causes: list[str]
    suggested_steps: list[str]
    confidence: ConfidenceTier


class AssessmentError(Exception):
    """The assessor could not produce a valid assessment; the try counts as failed."""


class Assessor(Protocol):
    #: Stored as ``ai_assessment_data.generator``.
    name: str

    def assess(self, request: AssessmentRequest) -> AssessmentResult:
        """Raises :class:`AssessmentError` (or any exception) on failure."""
        ...
