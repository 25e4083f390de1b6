"""The request id of the work in progress: set by the API per request and by
the worker per job, read by logging and by ``record_event``."""

import re
import uuid
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_from(header: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token, else a fresh one."""
    if header is not None and _ACCEPTABLE.match(header):
        return header
    return uuid.uuid4().hex
