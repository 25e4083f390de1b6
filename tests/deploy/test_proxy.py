"""deploy/nginx.conf in a real nginx, in front of two real ``escalations api``
replicas (private redis-server, the run's PostgreSQL database).

nginx runs the repo's nginx.conf unchanged except for its ``listen`` port, and
includes a generated upstreams file: the compose one with the replicas' local
addresses, plus temp paths in this test's directory. .ci/run installs nginx.
"""

import json
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from shared.auth.tokens import issue_token
from shared.core.db import make_engine
from shared.core.models import Role
from testkit.procs import (
    HOST,
    Proc,
    ProcessError,
    api_env,
    base_url,
    free_port,
    redis_url,
    spawn,
    start_api,
    start_redis,
    wait_until,
)
from tests.conftest import TEST_SECRET, empty_tables, handoff_body
from tests.e2e.sse import SSEClient

pytestmark = pytest.mark.slow

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE_SERVERS = ("server api-1:8000;", "server api-2:8000;")
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
#: An event caused through the proxy must reach a stream through it this fast.
LIVE_EVENT_SECONDS = 5.0


def token(role: Role) -> str:
    return issue_token(
        secret=TEST_SECRET, sub=f"{role.value}-proxy", name=f"{role.value} behind nginx",
        role=role, org="acme", ttl=timedelta(hours=1),
    )  # fmt: skip


JUNIOR, SENIOR = token(Role.engineer), token(Role.senior)


# --- nginx ----------------------------------------------------------------------


def nginx_binary() -> str:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise ProcessError("nginx is not installed (.ci/run installs Debian's nginx-light)")
    return binary


def render_config(prefix: Path, *, port: int, upstream_ports: list[int]) -> Path:
    """Write nginx.conf (only ``listen`` changed) and its upstreams include into ``prefix``."""
    conf = (DEPLOY / "nginx.conf").read_text()
    assert conf.count("listen 80;") == 1
    (prefix / "nginx.conf").write_text(conf.replace("listen 80;", f"listen {HOST}:{port};"))

    upstreams = (DEPLOY / "nginx-upstreams.conf").read_text()
    for server, upstream_port in zip(COMPOSE_SERVERS, upstream_ports, strict=True):
        assert upstreams.count(server) == 1
        upstreams = upstreams.replace(server, f"server {HOST}:{upstream_port};")
    temp = "".join(f"{name}_temp_path {prefix / name};\n" for name in TEMP_PATHS)
    (prefix / "nginx-upstreams.conf").write_text(upstreams + temp)
    return prefix / "nginx.conf"


def start_nginx(port: int, *, upstream_ports: list[int], prefix: Path, log_dir: Path) -> Proc:
    """nginx in the foreground with everything it writes under ``prefix``; its
    error and access logs go to ``log_dir/nginx.log``. Returned once it proxies."""
    conf = render_config(prefix, port=port, upstream_ports=upstream_ports)
    # `user root` keeps the workers able to reach temp paths under pytest's 0700
    # tmp dirs (nginx ignores it, with a notice, when not started as root).
    globals_ = f"daemon off; pid {prefix / 'nginx.pid'}; user root;"
    argv = [nginx_binary(), "-e", "stderr", "-p", str(prefix), "-c", str(conf), "-g", globals_]
    proc = spawn("nginx", argv, port=port, log_dir=log_dir)
    try:
        wait_until(lambda: _healthz(port), proc=proc, what="/healthz through nginx")
    except BaseException:
        proc.stop()
        raise
    return proc


def _healthz(port: int) -> bool:
    try:
        return httpx.get(f"{base_url(port)}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


# --- the stack ------------------------------------------------------------------


@dataclass
class Stack:
    proxy: Proc
    replicas: list[Proc]

    def call(self, method: str, path: str, bearer: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
        return httpx.request(
            method, f"{base_url(self.proxy.port)}{path}",
            headers={"Authorization": f"Bearer {bearer}", **kwargs.pop("headers", {})},
            timeout=10, **kwargs,
        )  # fmt: skip


@pytest.fixture(scope="module")
def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    engine = make_engine(postgres_url)
    empty_tables(engine)
    logs = tmp_path_factory.mktemp("proxy-logs")
    started: list[Proc] = []
    try:
        started.append(redis := start_redis(free_port(), log_dir=logs))
        env = api_env(
            database_url=postgres_url, redis_url=redis_url(redis.port), jwt_secret=TEST_SECRET,
            log_level="INFO",  # uvicorn's access log shows which replica served what
        )  # fmt: skip
        replicas = [start_api(free_port(), env=env, log_dir=logs) for _ in range(2)]
        started.extend(replicas)
        prefix = tmp_path_factory.mktemp("nginx")
        proxy = start_nginx(
            free_port(), upstream_ports=[r.port for r in replicas], prefix=prefix, log_dir=logs
        )
        started.append(proxy)
        yield Stack(proxy=proxy, replicas=replicas)
    finally:
        for proc in reversed(started):
            proc.stop()
        empty_tables(engine)
        engine.dispose()


# --- SSE over HTTP/1.1 ----------------------------------------------------------


class ChunkedStream:
    """``GET /api/v1/events`` over HTTP/1.1 on a raw socket, decoding the chunked
    body as it arrives. Every wait has a deadline; nothing reads past it."""

    def __init__(self, port: int, *, bearer: str) -> None:
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""
        self.ended = False
        self._raw = b""
        self._sock = socket.create_connection((HOST, port), timeout=5)
        request = (
            f"GET /api/v1/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Authorization: Bearer {bearer}\r\nAccept: text/event-stream\r\n\r\n"
        )
        self._sock.sendall(request.encode())

    def close(self) -> None:
        self._sock.close()

    def wait_for(self, text: str, *, timeout: float) -> None:
        """Read until ``text`` is in the decoded body; AssertionError after ``timeout``
        seconds or if the server ends the stream first."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.body:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {text!r} within {timeout} s; body so far: {self.body!r}"
            assert not self.ended, f"stream ended before {text!r}: {self.body!r}"
            self._sock.settimeout(min(remaining, 0.5))
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                self.ended = True
                continue
            self._raw += chunk
            self._decode()

    def _decode(self) -> None:
        if self.status is None:
            head, sep, rest = self._raw.partition(b"\r\n\r\n")
            if not sep:
                return
            status_line, *lines = head.decode("latin-1").split("\r\n")
            self.status = int(status_line.split(" ", 2)[1])
            for line in lines:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
            self._raw = rest
        while not self.ended:
            size_line, sep, rest = self._raw.partition(b"\r\n")
            if not sep:
                return
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self._raw = rest[size + 2 :]
            self.ended = size == 0


# --- tests ----------------------------------------------------------------------


def test_sse_over_http11_gets_an_event_through_the_proxy_as_it_happens(stack: Stack) -> None:
    stream = ChunkedStream(stack.proxy.port, bearer=SENIOR)
    try:
        stream.wait_for("event: ready\n", timeout=10)
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["transfer-encoding"] == "chunked"

        request_id = f"req-{uuid.uuid4().hex[:12]}"
        created = stack.call(
            "POST", "/api/v1/handoffs", JUNIOR, json=handoff_body("sess-h11"),
            headers={"X-Request-ID": request_id},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        assert created.headers.get_list("x-request-id") == [request_id]
        stream.wait_for(created.json()["id"], timeout=LIVE_EVENT_SECONDS)
        assert not stream.ended  # delivered while the stream stays open: not buffered
        *_, last = stream.body.decode().strip().split("\n\n")
        fields = dict(line.split(": ", 1) for line in last.splitlines())
        assert fields["event"] == "handoff_created"
        event = json.loads(fields["data"])
        assert event["handoff_id"] == created.json()["id"]
        # The caller's id is echoed and logged; events store the API's own id.
        assert re.fullmatch(r"[0-9a-f]{32}", event["request_id"]), event["request_id"]
    finally:
        stream.close()


def test_sse_over_http10_gets_an_event_through_the_proxy_as_it_happens(stack: Stack) -> None:
    with SSEClient(stack.proxy.port, token=SENIOR) as client:
        client.wait_ready()
        assert client.status == 200
        created = stack.call("POST", "/api/v1/handoffs", JUNIOR, json=handoff_body("sess-h10"))
        assert created.status_code == 201, created.text
        handoff_id = created.json()["id"]
        client.wait_for(
            lambda c: any(m.data["handoff_id"] == handoff_id for m in c.events()),
            timeout=LIVE_EVENT_SECONDS, what="handoff_created",
        )  # fmt: skip
        assert [m.event for m in client.events()][-1] == "handoff_created"
        assert not client.closed_by_server


def test_plain_requests_pass_through(stack: Stack) -> None:
    created = stack.call("POST", "/api/v1/handoffs", JUNIOR, json=handoff_body("sess-plain"))
    assert created.status_code == 201, created.text
    fetched = stack.call("GET", f"/api/v1/handoffs/{created.json()['id']}", SENIOR)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["session_id"] == "sess-plain"
    assert stack.call("GET", "/api/v1/handoffs/no-such-id", SENIOR).status_code == 404


def test_requests_reach_both_replicas(stack: Stack) -> None:
    probes = [f"probe-{uuid.uuid4().hex}" for _ in range(6)]
    for probe in probes:
        assert httpx.get(f"{base_url(stack.proxy.port)}/healthz?{probe}", timeout=5).is_success

    def served(replica: Proc) -> set[str]:
        log = replica.log_text()
        return {probe for probe in probes if probe in log}

    # The access log line of a request is written after its response: wait for all six.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and set().union(*map(served, stack.replicas)) != set(probes):
        time.sleep(0.05)
    one, two = (served(replica) for replica in stack.replicas)
    assert one and two, "every request went to one replica"
    assert one | two == set(probes) and not one & two


def test_request_id_is_kept_or_made_up(stack: Stack) -> None:
    def request_ids(**headers: str) -> list[str]:
        url = f"{base_url(stack.proxy.port)}/healthz"
        return httpx.get(url, headers=headers, timeout=5).headers.get_list("x-request-id")

    assert request_ids(**{"X-Request-ID": "req-123"}) == ["req-123"]
    for replaced in ({}, {"X-Request-ID": "not acceptable!"}):
        (made_up,) = request_ids(**replaced)
        assert re.fullmatch(r"[0-9a-f]{32}", made_up)


@pytest.mark.parametrize("spoofed", [{}, {"X-Forwarded-For": "127.0.0.1"}])
def test_metrics_are_not_served_on_the_public_port(stack: Stack, spoofed: dict[str, str]) -> None:
    response = httpx.get(f"{base_url(stack.proxy.port)}/metrics", headers=spoofed, timeout=5)
    assert response.status_code == 403
    assert response.json()["error"] == "metrics_forbidden"


def test_bodies_over_the_api_limit_get_its_json_413_every_time(stack: Stack) -> None:
    padding = "x" * (257 * 1024)
    body = handoff_body("sess-big", engineer_notes=padding)
    for _ in range(10):  # the API's own 413 raced into a 502 about one time in four
        response = stack.call("POST", "/api/v1/handoffs", JUNIOR, json=body)
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == "payload_too_large"
        assert len(response.headers.get_list("x-request-id")) == 1


def test_bodies_up_to_the_limit_reach_the_api(stack: Stack) -> None:
    body = handoff_body("sess-near-limit", engineer_notes="x" * 3000)
    created = stack.call("POST", "/api/v1/handoffs", JUNIOR, json=body)
    assert created.status_code == 201, created.text
    exactly = b"x" * (256 * 1024)  # the API's limit: passed on, refused by the API as JSON
    response = stack.call(
        "POST", "/api/v1/handoffs", JUNIOR, content=exactly,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status_code == 422, response.text


def test_events_location_is_configured_for_streaming() -> None:
    """The live tests above also pass with nginx 1.22 buffering, since
    sse-starlette sends ``X-Accel-Buffering: no``; this pins the proxy's own
    settings so the stream does not depend on that header alone."""
    conf = (DEPLOY / "nginx.conf").read_text()
    block = conf.split("location /api/v1/events {", 1)[1].split("}", 1)[0]
    for directive in (
        "proxy_buffering off;", "proxy_cache off;", "proxy_http_version 1.1;",
        'proxy_set_header Connection "";', "chunked_transfer_encoding on;",
    ):  # fmt: skip
        assert directive in block, directive
    timeout = re.search(r"proxy_read_timeout (\d+)s;", block)
    assert timeout is not None and int(timeout.group(1)) > 15 * 10  # ≫ the 15 s heartbeat
