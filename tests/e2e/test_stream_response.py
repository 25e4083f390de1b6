"""The event stream's own response (services/api/streaming/response.py) against a
real ``escalations api`` process, over raw sockets: the hub's keep-alive pings
reach an idle stream, a client that goes away gives its stream back at once
(the open-stream gauge), and HEAD answers the stream's headers without a stream."""

import socket
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from shared.auth.tokens import issue_token
from shared.core.models import Role
from testkit.procs import HOST, Proc, api_env, base_url, redis_url, wait_until
from tests.conftest import TEST_SECRET
from tests.e2e.conftest import StartReplica

pytestmark = pytest.mark.slow

PING_SECONDS = 0.3


@pytest.fixture
def api(sqlite_url: str, private_redis: Proc, start_replica: StartReplica) -> Iterator[Proc]:
    env = api_env(
        database_url=sqlite_url, redis_url=redis_url(private_redis.port), jwt_secret=TEST_SECRET,
        sse_ping_seconds=str(PING_SECONDS),
    )  # fmt: skip
    yield start_replica(env)


def senior_token() -> str:
    return issue_token(
        secret=TEST_SECRET, sub="senior-stream", name="Senior Stream", role=Role.senior,
        org="acme", ttl=timedelta(hours=1),
    )  # fmt: skip


def open_streams(api: Proc) -> float:
    for line in httpx.get(f"{base_url(api.port)}/metrics", timeout=5).text.splitlines():
        if line.startswith("escalations_sse_open_streams "):
            return float(line.split()[1])
    raise AssertionError("no open-stream gauge")


def request(method: str) -> bytes:
    return (
        f"{method} /api/v1/events HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {senior_token()}\r\n\r\n"
    ).encode()


def read_until(sock: socket.socket, wanted: bytes, *, timeout: float) -> bytes:
    """What the server sent until ``wanted`` appeared (or the deadline)."""
    sock.settimeout(0.1)
    received = b""
    deadline = time.monotonic() + timeout
    while wanted not in received and time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        received += chunk
    return received


def test_an_idle_stream_gets_keep_alive_pings(api: Proc) -> None:
    with socket.create_connection((HOST, api.port)) as sock:
        sock.sendall(request("GET"))
        received = read_until(sock, b": ping\n\n", timeout=10 * PING_SECONDS + 5)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"content-type: text/event-stream; charset=utf-8" in head.lower()
    assert b"event: ready" in body and b": ping\n\n" in body


def test_a_client_that_leaves_gives_its_stream_back(api: Proc) -> None:
    before = open_streams(api)
    with socket.create_connection((HOST, api.port)) as sock:
        sock.sendall(request("GET"))
        assert b"event: ready" in read_until(sock, b"event: ready", timeout=10)
        wait_until(lambda: open_streams(api) == before + 1, proc=api, what="the stream counted")
    wait_until(lambda: open_streams(api) == before, proc=api, what="the stream given back")


def test_head_answers_the_headers_and_no_stream(api: Proc) -> None:
    with socket.create_connection((HOST, api.port)) as sock:
        sock.sendall(request("HEAD"))
        received = read_until(sock, b"\r\n\r\n", timeout=10)
        assert received.startswith(b"HTTP/1.1 200 ")
        assert b"text/event-stream" in received
        # The response ended: the same connection answers the next request.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_until(sock, b"HTTP/1.1 200 ", timeout=10).startswith(b"HTTP/1.1 200 ")
