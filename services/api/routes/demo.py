"""``/api/v1/demo``: one-click sign-in as the demo org's users, for ``escalations up``.

Off unless ``ESCALATIONS_DEMO_SIGN_IN`` is true; when off, ``POST /sign-in``
answers 404 and ``GET`` says ``{"enabled": false}``.
"""

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from services.api.deps import SettingsDep
from services.api.errors import errors
from shared.auth.demo_users import DEMO_ORG, DEMO_TOKEN_TTL, DEMO_USERS, demo_token
from shared.core.errors import NotFound
from shared.core.models import Role, StrictModel

router = APIRouter(prefix="/api/v1/demo", tags=["demo"])


class DemoStatus(BaseModel):
    enabled: bool


class DemoSignIn(StrictModel):
    role: Role


class DemoToken(BaseModel):
    token: str
    user_id: str
    name: str
    role: Role
    org: str
    expires_in: int


async def require_demo_sign_in(settings: SettingsDep) -> None:
    if not settings.demo_sign_in:
        raise NotFound("Demo sign-in is not enabled on this server.", code="not_found")


@router.get("")
def demo_status(settings: SettingsDep) -> DemoStatus:
    """Whether the console should offer the demo sign-in buttons."""
    return DemoStatus(enabled=settings.demo_sign_in)


@router.post(
    "/sign-in",
    responses=errors(400, 404, 413),
    dependencies=[Depends(require_demo_sign_in)],
)
def demo_sign_in(body: DemoSignIn, settings: SettingsDep) -> DemoToken:
    """A 12-hour bearer token for the demo user of ``role`` in org ``demo``."""
    user_id, name = DEMO_USERS[body.role]
    return DemoToken(
        token=demo_token(body.role, secret=settings.jwt_secret),
        user_id=user_id,
        name=name,
        role=body.role,
        org=DEMO_ORG,
        expires_in=int(DEMO_TOKEN_TTL.total_seconds()),
    )
