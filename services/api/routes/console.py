"""The web console: ``/`` serves its page, ``/console/...`` its static files
(shipped inside the package, no build step). Every URL the console uses is
relative, so it also works behind a reverse proxy."""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from services.api.deps import SettingsDep
from shared.auth.demo_users import DEMO_USERS
from shared.core.models import Role
from shared.events.models import EventType

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"

#: The page loads only its own scripts, styles and API; nothing inline, no framing.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
def console_page() -> FileResponse:
    return FileResponse(CONSOLE_DIR / "index.html", headers=PAGE_HEADERS)


class DemoUser(BaseModel):
    role: Role
    id: str
    name: str


class DemoConfig(BaseModel):
    enabled: bool
    users: list[DemoUser]


class SsoConfig(BaseModel):
    """Sign-in at the identity provider (``/auth/login``), when configured."""

    enabled: bool
    display_name: str


class ConsoleConfig(BaseModel):
    """What the console learns from the server's settings. (The enums it uses, the
    event types among them, are in ``console/enums.js``, generated from Python:
    ``services.api.console_enums``; ``event_types`` stays here for other readers.)"""

    event_types: list[EventType]
    demo: DemoConfig
    sso: SsoConfig


@router.get("/console/config.json")
def console_config(settings: SettingsDep, response: Response) -> ConsoleConfig:
    """The event types (``shared.events.models.EventType``), whether the console offers
    sign-in at the identity provider, and the demo users it offers
    (``shared.auth.demo_users``; none unless ``ESCALATIONS_DEMO_SIGN_IN`` is on).
    Public: nothing here is a secret."""
    response.headers["Cache-Control"] = "no-cache"
    enabled = settings.demo_sign_in
    users = [DemoUser(role=role, id=sub, name=name) for role, (sub, name) in DEMO_USERS.items()]
    demo = DemoConfig(enabled=enabled, users=users if enabled else [])
    sso = SsoConfig(
        enabled=bool(settings.oidc_issuer and settings.oidc_client_id),
        display_name=settings.oidc_display_name,
    )
    return ConsoleConfig(event_types=list(EventType), demo=demo, sso=sso)


class ConsoleFiles(StaticFiles):
    """Static files that the browser revalidates (ETag) on every load, so an
    upgraded replica never serves a page with last release's scripts."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    """Serve the console page at ``/``, its configuration at ``/console/config.json``
    (a route, so it is matched before the static mount) and its assets at ``/console``."""
    app.include_router(router)
    app.mount("/console", ConsoleFiles(directory=CONSOLE_DIR), name="console")
