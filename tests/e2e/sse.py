"""A minimal SSE client for end-to-end tests: a real socket, read on a
background thread, with deadlines instead of sleeps.

It speaks HTTP/1.0 so the server frames the stream by closing the connection
rather than with chunked encoding, which keeps parsing to plain lines.
"""

import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

RECV_TIMEOUT_SECONDS = 0.2


@dataclass(frozen=True)
class SSEMessage:
    event: str
    id: int | None
    data: Any
    size: int = 0  # bytes of the data line


class SSEClient:
    def __init__(
        self,
        port: int,
        *,
        token: str | None = None,
        cookie: str | None = None,
        last_event_id: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """Authenticates with the bearer ``token``, or else the stream ``cookie``."""
        self.messages: list[SSEMessage] = []
        self.status: int | None = None
        self.closed_by_server = False
        self._address = (host, port)
        self._request = self._build_request(host, port, token, cookie, last_event_id)
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)

    @staticmethod
    def _build_request(
        host: str, port: int, token: str | None, cookie: str | None, last_event_id: int | None
    ) -> bytes:
        lines = ["GET /api/v1/events HTTP/1.0", f"Host: {host}:{port}", "Accept: text/event-stream"]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        elif cookie is not None:
            lines.append(f"Cookie: escalations_stream={cookie}")
        if last_event_id is not None:
            lines.append(f"Last-Event-ID: {last_event_id}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def __enter__(self) -> "SSEClient":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    # --- reading ---------------------------------------------------------------

    def _read(self) -> None:
        with socket.create_connection(self._address, timeout=5) as sock:
            sock.sendall(self._request)
            sock.settimeout(RECV_TIMEOUT_SECONDS)
            buffer = b""
            while not self._stop.is_set():
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    self.closed_by_server = True
                    break
                buffer = self._consume(buffer + chunk)
        with self._changed:
            self._changed.notify_all()

    def _consume(self, buffer: bytes) -> bytes:
        if self.status is None:
            head, sep, rest = buffer.partition(b"\r\n\r\n")
            if not sep:
                return buffer
            self.status = int(head.split(b" ", 2)[1])
            buffer = rest
        while b"\n\n" in buffer:
            block, _, buffer = buffer.partition(b"\n\n")
            message = _parse(block.decode())
            if message is not None:
                with self._changed:
                    self.messages.append(message)
                    self._changed.notify_all()
        return buffer

    # --- waiting -----------------------------------------------------------------

    def wait_for(self, predicate, *, timeout: float = 10.0, what: str = "messages") -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no {what} within {timeout} s; got {[m.event for m in self.messages]}"
                    )
                self._changed.wait(remaining)

    def events(self, *types: str) -> list[SSEMessage]:
        """Handoff events (or the given types), in arrival order."""
        with self._changed:
            return [
                m
                for m in self.messages
                if (m.event in types if types else m.event.startswith("handoff_"))
            ]

    def wait_ready(self, timeout: float = 10.0) -> SSEMessage:
        self.wait_for(lambda c: c.events("ready"), timeout=timeout, what="ready")
        return self.events("ready")[0]


def _parse(block: str) -> SSEMessage | None:
    fields: dict[str, str] = {}
    for line in block.splitlines():
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value
    if "event" not in fields and "data" not in fields:
        return None
    raw_id = fields.get("id")
    return SSEMessage(
        event=fields.get("event", "message"),
        id=int(raw_id) if raw_id else None,
        data=json.loads(fields["data"]) if "data" in fields else None,
        size=len(fields.get("data", "").encode()),
    )
