"""The request id of the work in progress: set by the API per request and by
the worker per job, read by logging and by ``record_event``.

``REQUEST_ID`` is always made by the server: it is what events (visible to the
whole org) and job meta store. A caller's own ``X-Request-ID`` is only logged
beside it (``CLIENT_REQUEST_ID``) and echoed, never stored.
"""

import re
import uuid
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
CLIENT_REQUEST_ID: ContextVar[str | None] = ContextVar("client_request_id", default=None)

_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def client_request_id(header: str | None) -> str | None:
    """The caller's ``X-Request-ID`` when it is a sane token, else None."""
    if header is not None and _ACCEPTABLE.match(header):
        return header
    return None
