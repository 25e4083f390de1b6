"""A local OpenAI-compatible chat-completions server for tests and the soak (stdlib only).

In-process::

    with OpenAIStub(mode="good") as stub:
        assessor = OpenAIAssessor(base_url=stub.base_url, model="m", timeout=5)
        stub.set_mode("slow", delay=3)
        stub.set_answer({"summary": "…", …})   # or a raw string sent verbatim
        stub.request_count, stub.last_body, stub.last_headers

As a process (prints ``listening on http://127.0.0.1:<port>`` once ready)::

    python -m testkit.openai_stub --port 0 --mode good [--delay S] [--failure-rate F]

Control endpoints (also served in-process):

* ``POST /_stub/mode`` ``{"mode": "...", "delay": S, "answer": {...} | "..."}``
  (every key optional) switches behaviour; answers the new state.
* ``GET /_stub/requests`` → ``{"count", "last_body", "last_headers"}``.
* ``POST /_stub/reset`` forgets the recorded requests.

Modes for ``POST …/chat/completions`` (any path with that suffix):

* ``good``: 200 with the answer (default :data:`GOOD_ANSWER`) as the content.
* ``malformed``: 200 whose content is not JSON.
* ``no_choices``: 200 with ``"choices": []``.
* ``error``: HTTP 500.
* ``slow``: waits ``delay`` seconds, then answers as ``good``; a stop wakes it
  at once (and it then closes without answering).
* ``flaky``: fails a share ``failure_rate`` (default 0.2) of calls, spread evenly
  over the count (call ``n`` fails when ``floor(n * rate)`` steps up), the failures
  alternating between ``error`` and ``malformed``; the others answer as ``good``.
"""

import argparse
import copy
import json
import signal
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("good", "malformed", "no_choices", "error", "slow", "flaky")
DEFAULT_FAILURE_RATE = 0.2

GOOD_ANSWER: dict[str, Any] = {
    "summary": "The checkout pods are OOMKilled: the new release needs more memory.",
    "likely_causes": ["Memory limit too low for the new release", "A memory leak"],
    "suggested_steps": ["Raise the memory limit to 1Gi", "Profile heap usage under load"],
    "confidence": "medium",
}
MALFORMED_CONTENT = "Sure! The pods are probably out of memory. {summary: oops"


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any


class StubState:
    """Mode, delay, answer and recorded requests; every access is under one lock."""

    def __init__(
        self, mode: str = "good", delay: float = 0.0, failure_rate: float = DEFAULT_FAILURE_RATE
    ) -> None:
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.mode = "good"
        self.delay = 0.0
        self.failure_rate = DEFAULT_FAILURE_RATE
        self.flaky_calls = 0
        self.flaky_failures = 0
        self.answer: dict[str, Any] | str = copy.deepcopy(GOOD_ANSWER)
        self.requests: list[RecordedRequest] = []
        self.configure(mode=mode, delay=delay, failure_rate=failure_rate)

    def configure(
        self,
        *,
        mode: str | None = None,
        delay: float | None = None,
        answer: Any = None,
        failure_rate: float | None = None,
    ) -> dict[str, Any]:
        """Change what is given; raises ``ValueError`` on an unknown mode or bad values."""
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        if delay is not None and (not isinstance(delay, int | float) or delay < 0):
            raise ValueError("delay must be a non-negative number")
        if answer is not None and not isinstance(answer, dict | str):
            raise ValueError("answer must be a JSON object or a string")
        if failure_rate is not None and (
            not isinstance(failure_rate, int | float) or not 0 <= failure_rate <= 1
        ):
            raise ValueError("failure_rate must be a number from 0 to 1")
        with self._lock:
            self.mode = mode if mode is not None else self.mode
            self.delay = float(delay) if delay is not None else self.delay
            self.answer = copy.deepcopy(answer) if answer is not None else self.answer
            if failure_rate is not None:
                self.failure_rate = float(failure_rate)
            return {"mode": self.mode, "delay": self.delay, "failure_rate": self.failure_rate}

    def record(self, request: RecordedRequest) -> tuple[str, float, dict[str, Any] | str]:
        """Store the request; return the behaviour in force for it (``flaky``
        resolved to ``error``, ``malformed`` or ``good`` for this call)."""
        with self._lock:
            self.requests.append(request)
            mode = self._flaky_outcome() if self.mode == "flaky" else self.mode
            return mode, self.delay, copy.deepcopy(self.answer)

    def _flaky_outcome(self) -> str:
        previous = int(self.flaky_calls * self.failure_rate)
        self.flaky_calls += 1
        if int(self.flaky_calls * self.failure_rate) == previous:
            return "good"
        self.flaky_failures += 1
        return "error" if self.flaky_failures % 2 else "malformed"

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            last = self.requests[-1] if self.requests else None
            return {
                "count": len(self.requests),
                "last_body": last.body if last else None,
                "last_headers": last.headers if last else None,
            }

    def recorded(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    timeout = 10  # seconds a silent client may hold a handler thread

    def do_GET(self) -> None:
        if self.path == "/_stub/requests":
            self._send_json(200, self.server.state.snapshot())
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        body = self._read_json()
        if self.path.rstrip("/").endswith("/chat/completions"):
            self._chat(body)
        elif self.path == "/_stub/mode":
            self._configure(body)
        elif self.path == "/_stub/reset":
            self.server.state.reset()
            self._send_json(200, {"count": 0})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def _configure(self, body: Any) -> None:
        if not isinstance(body, dict):
            self._send_json(400, {"error": "body must be a JSON object"})
            return
        try:
            state = self.server.state.configure(
                mode=body.get("mode"),
                delay=body.get("delay"),
                answer=body.get("answer"),
                failure_rate=body.get("failure_rate"),
            )
        except ValueError as exc:
            self._send_json(400, {"error": str(exc)})
            return
        self._send_json(200, state)

    def _chat(self, body: Any) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        mode, delay, answer = self.server.state.record(RecordedRequest(self.path, headers, body))
        if mode == "slow" and self.server.state.stopping.wait(delay):
            return  # shutting down: close without an answer
        if mode == "error":
            self._send_json(500, {"error": {"message": "stub failure", "type": "server_error"}})
        elif mode == "no_choices":
            self._send_json(200, _completion(body, content=None))
        elif mode == "malformed":
            self._send_json(200, _completion(body, content=MALFORMED_CONTENT))
        else:
            content = answer if isinstance(answer, str) else json.dumps(answer)
            self._send_json(200, _completion(body, content=content))

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. it timed out on a slow answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _completion(request_body: Any, *, content: str | None) -> dict[str, Any]:
    """A chat.completion body; ``content=None`` gives one with no choices."""
    model = request_body.get("model", "stub") if isinstance(request_body, dict) else "stub"
    choices = (
        []
        if content is None
        else [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ]
    )
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: StubState) -> None:
        super().__init__(address, _Handler)
        self.state = state


class OpenAIStub:
    """The stub server in a background thread; a context manager.

    ``port=0`` picks a free port; read it back from :attr:`port` once started.
    """

    def __init__(
        self,
        *,
        mode: str = "good",
        delay: float = 0.0,
        failure_rate: float = DEFAULT_FAILURE_RATE,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.state = StubState(mode=mode, delay=delay, failure_rate=failure_rate)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "OpenAIStub":
        """Bind and serve; returns once the socket accepts connections."""
        self._server = _Server(self._address, self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake slow handlers, stop serving and close the socket; idempotent."""
        if self._server is None:
            return
        self.state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "OpenAIStub":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stub is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._address[0]}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to use as ``ESCALATIONS_LLM_BASE_URL``."""
        return f"{self.url}/v1"

    def set_mode(self, mode: str, *, delay: float | None = None) -> None:
        self.state.configure(mode=mode, delay=delay)

    def set_answer(self, answer: dict[str, Any] | str) -> None:
        """What ``good`` and ``slow`` give: a dict is sent as JSON, a string verbatim."""
        self.state.configure(answer=answer)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.recorded()

    @property
    def request_count(self) -> int:
        return int(self.state.snapshot()["count"])

    @property
    def last_body(self) -> Any:
        return self.state.snapshot()["last_body"]

    @property
    def last_headers(self) -> dict[str, str]:
        """The last chat request's headers, names lower-cased; empty before any."""
        headers: dict[str, str] = self.state.snapshot()["last_headers"] or {}
        return headers


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--mode", choices=MODES, default="good")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds, for --mode slow")
    parser.add_argument(
        "--failure-rate", type=float, default=DEFAULT_FAILURE_RATE, help="for --mode flaky"
    )
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with OpenAIStub(
        mode=args.mode,
        delay=args.delay,
        failure_rate=args.failure_rate,
        host=args.host,
        port=args.port,
    ) as stub:
        print(f"listening on http://{args.host}:{stub.port}", flush=True)
        while not done.wait(0.2):
            pass


if __name__ == "__main__":
    main()
