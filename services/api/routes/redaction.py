"""``/api/v1/settings/redaction``: thin routes over ``shared.redaction.service``
(admins only: the patterns say what an org considers secret)."""

from fastapi import APIRouter

from services.api.deps import AdminDep, RedactorsDep, SessionDep
from services.api.errors import errors
from shared.redaction import service
from shared.redaction.models import RedactionSettingsBody, RedactionSettingsPublic

router = APIRouter(prefix="/api/v1/settings", tags=["settings"])


@router.get("/redaction", responses=errors(403, 429))
def get_redaction(principal: AdminDep, session: SessionDep) -> RedactionSettingsPublic:
    return service.get_settings(session=session, org_id=principal.org_id)


@router.put("/redaction", responses=errors(400, 403, 413, 429))
def put_redaction(
    body: RedactionSettingsBody, principal: AdminDep, session: SessionDep, redactors: RedactorsDep
) -> RedactionSettingsPublic:
    """Replace the settings. A pattern that does not compile, matches the empty
    string or backtracks too long on probe input is a 422 (``invalid_redaction_pattern``,
    ``redaction_pattern_matches_empty``, ``redaction_pattern_too_slow``) naming it."""
    return service.put_settings(session=session, actor=principal, body=body, cache=redactors)
