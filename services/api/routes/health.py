"""Liveness, readiness and Prometheus metrics (outside ``/api/v1``)."""

import hmac
import ipaddress
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from services.api.deps import EngineDep, RedisDep, SettingsDep
from services.api.errors import errors
from shared.core.errors import Forbidden, NotAuthenticated

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive; checks no dependency."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A dependency does not answer."}})
def readyz(engine: EngineDep, redis: RedisDep) -> JSONResponse:
    """200 only when both the database and Redis answer; otherwise 503 naming which."""
    checks = {"database": _database_ok(engine), "redis": _redis_ok(redis)}
    failing = [name for name, ok in checks.items() if not ok]
    body = {name: "ok" if ok else "unavailable" for name, ok in checks.items()}
    if failing:
        detail = f"Not ready: {', '.join(failing)} unavailable."
        return JSONResponse({"error": "not_ready", "detail": detail, "checks": body}, 503)
    return JSONResponse({"status": "ready", "checks": body})


def _database_ok(engine: EngineDep) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("readiness: database unavailable: %s", exc)
        return False
    return True


def _redis_ok(redis: RedisDep) -> bool:
    try:
        return bool(redis.ping())
    except RedisError as exc:
        log.warning("readiness: redis unavailable: %s", exc)
        return False


@router.get("/metrics", response_class=Response, responses=errors(403))
def metrics(request: Request, settings: SettingsDep) -> Response:
    """Prometheus text format: this process's metrics and the queue's figures.
    With ``ESCALATIONS_METRICS_TOKEN`` set it needs ``Authorization: Bearer
    <token>`` (else 401); without, it answers only loopback clients that no proxy
    forwarded (else 403)."""
    _check_metrics_access(request, settings.metrics_token)
    body = generate_latest(REGISTRY) + generate_latest(request.app.state.metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _check_metrics_access(request: Request, token: str) -> None:
    if token:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        given = credentials.encode() if scheme.lower() == "bearer" else b""
        if not hmac.compare_digest(given, token.encode()):
            raise NotAuthenticated("Metrics need the metrics token.", code="metrics_unauthorized")
        return
    # A proxy's X-Forwarded-For may name a client of its choosing (uvicorn trusts it
    # under FORWARDED_ALLOW_IPS=*), so a forwarded request is never "local".
    forwarded = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    host = request.client.host if request.client else ""
    if forwarded or not _is_loopback(host):
        raise Forbidden(
            "Metrics answer loopback clients only (set ESCALATIONS_METRICS_TOKEN).",
            code="metrics_forbidden",
        )


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback
