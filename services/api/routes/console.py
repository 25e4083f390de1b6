"""The web console: ``/`` serves its page, ``/console/...`` its static files
(shipped inside the package, no build step). Every URL the console uses is
relative, so it also works behind a reverse proxy."""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

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


class ConsoleFiles(StaticFiles):
    """Static files that the browser revalidates (ETag) on every load, so an
    upgraded replica never serves a page with last release's scripts."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    """Serve the console page at ``/`` and its assets at ``/console``."""
    app.include_router(router)
    app.mount("/console", ConsoleFiles(directory=CONSOLE_DIR), name="console")
