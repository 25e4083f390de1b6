"""uvicorn's httptools protocol with the two limits it lacks: a cap on the size
of a request head (request line and headers) and a deadline for a complete one.

uvicorn's h11 protocol caps an incomplete head (``h11_max_incomplete_event_size``)
but has no head deadline either, and costs throughput; httptools has neither. So
``escalations api`` runs this subclass: past the cap the connection gets 431,
past the deadline 408 (or is closed when not a byte of a request arrived), and
either way it is closed. A head that completed is never timed out, so a
long-lived event stream is not cut; between requests uvicorn's keep-alive
timeout still applies.
"""

import asyncio
import json
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

#: Per header, what the head spends on ``": "`` and ``"\r\n"`` beside the name and value.
HEADER_OVERHEAD = 4


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


def refusal(status: int, code: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response in the API's error shape, closing the connection."""
    body = json.dumps({"error": code, "detail": detail}).encode()
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Limits are class attributes: :func:`bounded_protocol` makes a subclass
    with the configured ones, which uvicorn instantiates per connection."""

    max_head_bytes = 64 * 1024
    head_timeout_seconds = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True  # the next bytes belong to a request head
        self._head_bytes = 0  # bytes received since that head began (an upper bound)
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_head:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # as uvicorn does
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if not self._refused:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._awaiting_head and self._head_bytes > self.max_head_bytes:
            self._refuse_too_large()

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._awaiting_head = False
        self._head_bytes = 0
        head = len(self.url) + sum(
            len(name) + len(value) + HEADER_OVERHEAD for name, value in self.headers
        )
        if head > self.max_head_bytes:
            self._refuse_too_large()
            raise _HeadRefused
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_head = True

    # Limits

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0:  # an idle connection: nothing to answer
            self._refused = True
            self.transport.close()
            return
        detail = f"The request head did not arrive within {self.head_timeout_seconds:g} s."
        self._refuse(408, "request_timeout", detail)

    def _refuse_too_large(self) -> None:
        detail = f"Request line and headers are limited to {self.max_head_bytes} bytes."
        self._refuse(431, "request_header_too_large", detail)

    def _refuse(self, status: int, code: str, detail: str) -> None:
        self._refused = True
        self._cancel_head_timer()
        self.logger.warning("Refused a request: %s", detail)
        self.transport.write(refusal(status, code, detail))
        self.transport.close()


def bounded_protocol(*, max_head_bytes: int, head_timeout_seconds: float) -> type:
    """The protocol class to pass to uvicorn as ``http=``."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_head_bytes": max_head_bytes, "head_timeout_seconds": head_timeout_seconds},
    )
