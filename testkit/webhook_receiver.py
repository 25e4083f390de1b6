"""A local HTTP receiver for webhook tests and the webhook benchmark: it records
every request and answers from a script, one step per request.

A step is a status code, or one of the ways a receiver can misbehave:
``HANG`` (never answers until the receiver stops), ``BIG`` (a 200 with a
10 MB body), ``REDIRECT`` (307 to ``/redirected`` on itself). After the script
runs out, every request gets the last step (200 when the script is empty).
"""

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"
BIG = "big"
REDIRECT = "redirect"
BIG_BYTES = 10 * 1024 * 1024
HANG_LIMIT_SECONDS = 60.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


class Receiver:
    """``with Receiver([500, 500, 200]) as receiver: receiver.url("/hook")``."""

    def __init__(
        self, script: list[Any] | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.script = list(script or [])
        self.requests: list[Received] = []
        self.big_bytes_sent = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()

    def hook_requests(self) -> list[Received]:
        with self._lock:
            return [request for request in self.requests if request.path != "/redirected"]

    def _next_step(self) -> Any:
        with self._lock:
            if len(self.script) > 1:
                return self.script.pop(0)
            return self.script[0] if self.script else 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {key.lower(): value for key, value in self.headers.items()}
                with receiver._lock:
                    receiver.requests.append(Received(self.path, headers, body, time.monotonic()))
                step = receiver._next_step() if self.path != "/redirected" else 200
                if step == HANG:
                    receiver._stopped.wait(HANG_LIMIT_SECONDS)
                    return
                if step == BIG:
                    self._big()
                elif step == REDIRECT:
                    self._answer(307, location="/redirected")
                else:
                    self._answer(int(step))

            def _answer(self, status: int, location: str | None = None) -> None:
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def _big(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(BIG_BYTES))
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    for _ in range(BIG_BYTES // len(chunk)):
                        self.wfile.write(chunk)
                        receiver.big_bytes_sent += len(chunk)
                except OSError:
                    pass  # the sender hung up, as it should

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
