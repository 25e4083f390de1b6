"""A local stub of Slack's Web API and of the ``response_url`` receiver, for tests.

``with SlackStub(token) as stub:`` serves ``{stub.api_url}chat.postMessage``
and ``chat.update`` (JSON or form bodies; ``Authorization: Bearer <token>``
else ``invalid_auth``) and answers like Slack (``ok``, ``channel``, ``ts``).
It keeps each message as the last ``chat.update`` left it
(:meth:`messages`), and every call (:attr:`calls`); ``stub.on_call`` runs
before a call is answered. ``stub.fail_next(method,
429, retry_after=2)`` makes the next call(s) of a method answer 429 with
``Retry-After``. ``POST /response/<name>`` records what was posted to a
``response_url`` (:meth:`responses`).
"""

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

from slack_sdk.signature import SignatureVerifier


@dataclass(frozen=True)
class Call:
    method: str
    body: dict[str, Any]
    status: int
    at: float = field(default_factory=time.monotonic)


class SlackStub:
    def __init__(self, token: str, *, host: str = "127.0.0.1") -> None:
        self.token = token
        self.calls: list[Call] = []
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._responses: dict[str, list[dict[str, Any]]] = {}
        self._failures: dict[str, list[tuple[int, int]]] = {}
        #: Called with the method's name before a Web API call is answered.
        self.on_call: Callable[[str], None] | None = None
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.base_url}/response/{name}"

    def __enter__(self) -> "SlackStub":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, method: str, status: int, *, retry_after: int = 1, times: int = 1) -> None:
        with self._lock:
            self._failures.setdefault(method, []).extend([(status, retry_after)] * times)

    def messages(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``(channel, ts)`` → the message as Slack would show it now."""
        with self._lock:
            return {key: dict(value) for key, value in self._messages.items()}

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def responses(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._responses.get(name, []))

    def _api(
        self, method: str, body: dict[str, Any], auth: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            failures = self._failures.get(method) or []
            if failures:
                status, retry_after = failures.pop(0)
                self.calls.append(Call(method, body, status))
                error = "ratelimited" if status == 429 else "internal_error"
                return status, {"ok": False, "error": error}, {"Retry-After": str(retry_after)}
            if auth != f"Bearer {self.token}":
                self.calls.append(Call(method, body, 200))
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            self.calls.append(Call(method, body, 200))
            channel = str(body.get("channel", ""))
            message = {"text": body.get("text"), "blocks": _blocks(body.get("blocks"))}
            if method == "chat.postMessage":
                ts = f"1700000000.{next(self._ts):06d}"
                self._messages[(channel, ts)] = message
                return 200, {"ok": True, "channel": channel, "ts": ts, "message": message}, {}
            if method == "chat.update":
                ts = str(body.get("ts", ""))
                if (channel, ts) not in self._messages:
                    return 200, {"ok": False, "error": "message_not_found"}, {}
                self._messages[(channel, ts)] = message
                return 200, {"ok": True, "channel": channel, "ts": ts, "text": message["text"]}, {}
            return 200, {"ok": False, "error": "unknown_method"}, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                body = _decode(raw, self.headers.get("Content-Type", ""))
                if self.path.startswith("/response/"):
                    with stub._lock:
                        stub._responses.setdefault(self.path[10:], []).append(body)
                    self._answer(200, {"ok": True}, {})
                elif self.path.startswith("/api/"):
                    auth = self.headers.get("Authorization", "")
                    if stub.on_call is not None:
                        stub.on_call(self.path[5:])
                    self._answer(*stub._api(self.path[5:], body, auth))
                else:
                    self._answer(404, {"ok": False, "error": "not_found"}, {})

            def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _decode(raw: bytes, content_type: str) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        return dict(json.loads(raw or b"{}"))
    return {key: values[0] for key, values in parse_qs(raw.decode()).items()}


def _blocks(blocks: Any) -> Any:
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def signed_interaction(
    secret: str, payload: dict[str, Any], *, timestamp: int
) -> tuple[bytes, dict[str, str]]:
    """A form-encoded interaction as Slack posts it, signed with ``secret`` by
    ``slack_sdk``'s own ``SignatureVerifier`` for ``timestamp`` (Unix seconds)."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": str(signature),
    }
    return body, headers


def click_payload(
    *, workspace: str, user: str, action: str, value: str, response_url: str
) -> dict[str, Any]:
    """A ``block_actions`` payload for one button."""
    return {
        "type": "block_actions",
        "team": {"id": workspace, "domain": "acme"},
        "user": {"id": user, "name": user.lower(), "team_id": workspace},
        "response_url": response_url,
        "actions": [{"action_id": action, "value": value, "type": "button"}],
    }
