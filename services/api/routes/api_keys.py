"""``/api/v1/api-keys``: thin routes over ``shared.api_keys``. Admins only;
another org's key is 404. The key itself is in the answer to create only."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from services.api.deps import AdminDep, RedisDep, SessionDep
from services.api.errors import errors
from shared.api_keys import service
from shared.api_keys.models import ApiKey, ApiKeyCreate, ApiKeyList, ApiKeyWithSecret

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])


def get_org_api_key(key_id: str, principal: AdminDep, session: SessionDep) -> ApiKey:
    """The admin's org's key not revoked, or 404 ``api_key_not_found``."""
    return service.load_api_key(session=session, org_id=principal.org_id, key_id=key_id)


ApiKeyDep = Annotated[ApiKey, Depends(get_org_api_key)]


@router.post("", status_code=201, responses=errors(400, 403, 413, 429))
def create_api_key(
    body: ApiKeyCreate, principal: AdminDep, session: SessionDep
) -> ApiKeyWithSecret:
    """``key`` is in this answer only; keep it, it cannot be shown again."""
    return service.create_api_key(session=session, actor=principal, body=body)


@router.get("", responses=errors(403, 429))
def list_api_keys(principal: AdminDep, session: SessionDep) -> ApiKeyList:
    """The org's keys not revoked, oldest first, without the keys themselves."""
    return service.list_api_keys(session=session, org_id=principal.org_id)


@router.delete("/{key_id}", status_code=204, responses=errors(403, 404, 429, 503))
def revoke_api_key(
    api_key: ApiKeyDep, principal: AdminDep, session: SessionDep, redis: RedisDep
) -> Response:
    """Refused on every replica within ``ESCALATIONS_API_KEY_CACHE_SECONDS`` (≤ 1 s);
    its open event streams end at once."""
    service.revoke_api_key(session=session, redis=redis, actor=principal, api_key=api_key)
    return Response(status_code=204)
