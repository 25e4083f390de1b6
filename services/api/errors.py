"""The one place where errors become HTTP responses: ``{"error", "detail", ...}``."""

import logging
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.core import errors as domain
from shared.core.models import ErrorBody

log = logging.getLogger(__name__)

#: By class; an error whose class is not listed gets its nearest listed
#: ancestor's status (``status_for``), so a bare ``DomainError`` is a 400.
STATUS_BY_ERROR: dict[type[domain.DomainError], int] = {
    domain.DomainError: 400,
    domain.NotAuthenticated: 401,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.InvalidInput: 422,
    domain.ServiceUnavailable: 503,
    domain.RateLimited: 429,
}

CODE_BY_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
}


def error_response(status: int, code: str, detail: str, /, **extra: object) -> JSONResponse:
    """``extra`` may hold any field name, ``status`` included (``invalid_state`` does)."""
    headers = _headers(status, extra)
    return JSONResponse({"error": code, "detail": detail, **extra}, status, headers=headers)


def _headers(status: int, extra: dict[str, object]) -> dict[str, str] | None:
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if status == 429 and isinstance(extra.get("retry_after"), int):
        return {"Retry-After": str(extra["retry_after"])}
    return None


def errors(*statuses: int, conflict_model: Any = ErrorBody) -> dict[int | str, Any]:
    """OpenAPI entries for the error responses a route can give: always 401 and
    422, plus ``statuses``. Every POST can get 413 (``BodySizeLimit``); one that
    reads a JSON body also 400 when the body is not decodable at all (not UTF-8,
    nested too deeply). ``conflict_model`` may be a union where a route's 409s differ."""
    return {
        status: {"model": conflict_model if status == 409 else ErrorBody}
        for status in (401, 422, *statuses)
    }


def status_for(exc: domain.DomainError) -> int:
    """The status of the nearest class in ``exc``'s class chain that has one."""
    return next(STATUS_BY_ERROR[cls] for cls in type(exc).__mro__ if cls in STATUS_BY_ERROR)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, domain.DomainError)
    return error_response(status_for(exc), exc.code, exc.detail, **exc.extra)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"loc": [str(part) for part in err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(f['loc'])}: {f['msg']}" for f in fields[:5])
    return error_response(422, "validation_error", summary or "Invalid request.", fields=fields)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = CODE_BY_STATUS.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503, "database_unavailable", "The database is unavailable; retry shortly."
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "Internal server error.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(domain.DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Connection loss, restarts, pool exhaustion: the caller may retry, nothing was committed.
    app.add_exception_handler(sqlalchemy.exc.OperationalError, _database_unavailable)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
