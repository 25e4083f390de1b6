"""Domain errors. They know nothing of HTTP; the API maps each class to a
status code in one place (``services/api/errors.py``)."""

from typing import Any


class DomainError(Exception):
    """Base class. ``code`` is the machine-readable ``error`` of the response;
    ``extra`` holds further fields for the response body."""

    code = "domain_error"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class NotAuthenticated(DomainError):
    code = "not_authenticated"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class QuotaExceeded(Conflict):
    """An org already has as many of something as it may (a 409). ``extra`` carries
    ``quota`` (what is counted) and ``limit``."""

    code = "quota_exceeded"

    def __init__(self, detail: str, *, quota: str, limit: int) -> None:
        super().__init__(detail, quota=quota, limit=limit)


class InvalidInput(DomainError):
    code = "invalid_input"


class ServiceUnavailable(DomainError):
    code = "service_unavailable"


class RateLimited(DomainError):
    """Past an abuse limit. ``extra`` carries ``limit`` (its name) and
    ``retry_after`` (whole seconds, at least 1, until a request may succeed)."""

    code = "rate_limited"

    def __init__(self, detail: str, *, limit: str, retry_after: int) -> None:
        super().__init__(detail, limit=limit, retry_after=max(1, retry_after))
        self.retry_after = max(1, retry_after)


def handoff_not_found(handoff_id: str) -> NotFound:
    return NotFound(f"Handoff {handoff_id} not found.", code="handoff_not_found")


def invalid_state(action: str, status: str) -> Conflict:
    return Conflict(f"Cannot {action} a {status} handoff.", code="invalid_state", status=status)
