"""Structured logging: one JSON object per line, with the request id (made by
the server) and, when the caller sent a sane one, its ``client_request_id``."""

import json
import logging

from shared.core.request_context import CLIENT_REQUEST_ID, REQUEST_ID
from shared.core.timeutil import isoformat, utcnow


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": isoformat(utcnow()),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": REQUEST_ID.get(),
        }
        client_request_id = CLIENT_REQUEST_ID.get()
        if client_request_id is not None:
            entry["client_request_id"] = client_request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the root logger (uvicorn's and RQ's included)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "rq.worker"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
