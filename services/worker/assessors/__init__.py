"""Pluggable assessors, chosen by ``ESCALATIONS_ASSESSOR``."""

from services.worker.assessors.base import Assessor
from shared.core.settings import Settings


def make_assessor(settings: Settings) -> Assessor:
    if settings.assessor == "openai":
        from services.worker.assessors.openai import OpenAIAssessor

        return OpenAIAssessor.from_settings(settings)
    from services.worker.assessors.heuristic import HeuristicAssessor

    return HeuristicAssessor()
