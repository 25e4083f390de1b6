"""``escalations api``'s server limits, over raw sockets against a real process:
a request head over ``ESCALATIONS_MAX_HEADER_BYTES`` gets 431 and the connection
closed; a head not complete within ``ESCALATIONS_HEADER_TIMEOUT_SECONDS`` gets 408
and the connection closed; normal requests, big bodies and long-lived event
streams are untouched. Also: a stream closed by sse-starlette's send timeout is
counted in ``escalations_sse_server_disconnects_total{reason="send_timeout"}``."""

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from shared.auth.tokens import issue_token
from shared.core.models import Role
from testkit.procs import HOST, Proc, api_env, base_url, redis_url, wait_until
from tests.conftest import TEST_SECRET, handoff_body
from tests.e2e.conftest import StartReplica
from tests.e2e.sse import SSEClient

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_SECONDS = 2.0
MAX_HEADER_BYTES = 64 * 1024
SEND_TIMEOUT_SECONDS = 1.0
#: How much later than its deadline a refusal may come on a loaded 2-core machine.
SLACK_SECONDS = 4.0


def token(role: Role) -> str:
    return issue_token(
        secret=TEST_SECRET, sub=f"{role.value}-limits", name=f"{role.value} limits",
        role=role, org="acme", ttl=timedelta(hours=1),
    )  # fmt: skip


@pytest.fixture
def api(sqlite_url: str, private_redis: Proc, start_replica: StartReplica) -> Iterator[Proc]:
    env = api_env(
        database_url=sqlite_url, redis_url=redis_url(private_redis.port), jwt_secret=TEST_SECRET,
        header_timeout_seconds=str(HEADER_TIMEOUT_SECONDS), max_header_bytes=str(MAX_HEADER_BYTES),
        sse_send_timeout_seconds=str(SEND_TIMEOUT_SECONDS), sse_ping_seconds="0.5",
    )  # fmt: skip
    yield start_replica(env)


def read_until_closed(sock: socket.socket, *, timeout: float) -> tuple[bytes, float | None]:
    """Everything the server sends, and when (monotonic) it closed the connection
    (None if it was still open after ``timeout``). A reset counts as closed."""
    sock.settimeout(0.1)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received, time.monotonic()
        if not chunk:
            return received, time.monotonic()
        received += chunk
    return received, None


def status_of(response: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", response)
    return int(match[1]) if match else None


def assert_still_serving(api: Proc) -> None:
    assert httpx.get(f"{base_url(api.port)}/healthz", timeout=5).status_code == 200


# --- head size ---------------------------------------------------------------------


def test_a_1_mb_header_is_refused_and_the_connection_closed(api: Proc) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * (1024 * 1024)

    def send_all(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the server closed the connection under us
            sock.sendall(head)

    with socket.create_connection((HOST, api.port), timeout=5) as sock:
        started = time.monotonic()
        sender = threading.Thread(target=send_all, args=(sock,), daemon=True)
        sender.start()
        response, closed_at = read_until_closed(sock, timeout=SLACK_SECONDS + 6)
        sender.join(timeout=5)
    assert closed_at is not None, "the connection was still open"
    assert closed_at - started < SLACK_SECONDS
    if response:  # else the reset overtook the answer, which is allowed
        assert status_of(response) == 431, response[:200]
        assert b'"error": "request_header_too_large"' in response
    assert_still_serving(api)


def test_a_complete_head_over_the_cap_gets_431(api: Proc) -> None:
    padding = b"b" * 4000
    headers = b"".join(b"X-Pad-%d: %s\r\n" % (number, padding) for number in range(20))
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
    assert len(request) > MAX_HEADER_BYTES
    with socket.create_connection((HOST, api.port), timeout=5) as sock:
        sock.sendall(request)
        response, closed_at = read_until_closed(sock, timeout=SLACK_SECONDS)
    assert status_of(response) == 431, response[:200]
    assert closed_at is not None


def test_a_head_just_under_the_cap_and_a_big_body_are_served(api: Proc) -> None:
    with httpx.Client(base_url=base_url(api.port), timeout=10) as client:
        near_cap = {"X-Padding": "c" * (MAX_HEADER_BYTES - 2048)}
        assert client.get("/healthz", headers=near_cap).status_code == 200
        body = b"[" + b"1," * 120_000 + b"1]"  # 240 KB: under the body limit, not a head
        response = client.post(
            "/api/v1/handoffs", content=body,
            headers={"Authorization": f"Bearer {token(Role.engineer)}",
                     "Content-Type": "application/json"},
        )  # fmt: skip
        assert response.status_code == 422, response.text
        for _ in range(5):  # keep-alive: the same connection serves request after request
            assert client.get("/healthz").status_code == 200


# --- head deadline -----------------------------------------------------------------


def test_a_header_dribbled_one_byte_a_second_is_closed_within_the_deadline(api: Proc) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100
    with socket.create_connection((HOST, api.port), timeout=5) as sock:
        sock.settimeout(1.0)
        started = time.monotonic()
        received, closed_at = b"", None
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
                chunk = sock.recv(65536)  # waits up to a second: the dribble's pace
            except TimeoutError:
                continue
            except OSError:
                closed_at = time.monotonic()
                break
            received += chunk
            if not chunk:
                closed_at = time.monotonic()
                break
            if time.monotonic() - started > HEADER_TIMEOUT_SECONDS + SLACK_SECONDS:
                break
    assert closed_at is not None, "a dribbling client was still connected"
    assert closed_at - started < HEADER_TIMEOUT_SECONDS + SLACK_SECONDS
    assert status_of(received) == 408, received[:200]
    assert b'"error": "request_timeout"' in received


def test_forty_dribbling_sockets_are_all_closed(api: Proc) -> None:
    sockets = [socket.create_connection((HOST, api.port), timeout=5) for _ in range(40)]
    try:
        for sock in sockets:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sock.setblocking(False)
        open_ = set(range(len(sockets)))
        deadline = time.monotonic() + HEADER_TIMEOUT_SECONDS + SLACK_SECONDS
        while open_ and time.monotonic() < deadline:
            for index in list(open_):
                try:
                    sockets[index].send(b"z")
                    if sockets[index].recv(65536) == b"":
                        open_.discard(index)
                except BlockingIOError:
                    continue
                except OSError:
                    open_.discard(index)
            time.sleep(0.2)  # the dribble's pace, not a wait for the server
        assert not open_, f"{len(open_)} of 40 dribbling sockets still open"
    finally:
        for sock in sockets:
            sock.close()
    assert_still_serving(api)


def test_an_idle_connection_that_never_sends_is_closed(api: Proc) -> None:
    with socket.create_connection((HOST, api.port), timeout=5) as sock:
        started = time.monotonic()
        received, closed_at = read_until_closed(sock, timeout=HEADER_TIMEOUT_SECONDS + 6)
    assert closed_at is not None and closed_at - started < HEADER_TIMEOUT_SECONDS + SLACK_SECONDS
    assert received == b""  # nothing to answer


def test_an_event_stream_outlives_the_head_deadline(api: Proc) -> None:
    with SSEClient(api.port, token=token(Role.senior)) as client:
        client.wait_ready()
        opened = time.monotonic()
        wait_until(
            lambda: time.monotonic() - opened > HEADER_TIMEOUT_SECONDS + 1,
            proc=api, what="the head deadline to pass", timeout=HEADER_TIMEOUT_SECONDS + 5,
        )  # fmt: skip
        created = httpx.post(
            f"{base_url(api.port)}/api/v1/handoffs", json=handoff_body("sess-outlives"),
            headers={"Authorization": f"Bearer {token(Role.engineer)}"}, timeout=10,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        handoff_id = created.json()["id"]
        client.wait_for(
            lambda c: any(m.data["handoff_id"] == handoff_id for m in c.events()),
            what="the handoff_created event",
        )
        assert not client.closed_by_server


# --- send timeout ------------------------------------------------------------------


def send_timeouts(api: Proc) -> float:
    text = httpx.get(f"{base_url(api.port)}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('escalations_sse_server_disconnects_total{reason="send_timeout"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_stream_closed_by_the_send_timeout_is_counted(api: Proc) -> None:
    """251 events of ~24 KB (6 MB, more than the kernel's 4 MB send buffer) replayed
    to a client that reads nothing: a send blocks past the send timeout. Events are
    slim (no transcript), so their size comes from the longest text they keep: a
    2,000-character summary outside the BMP (12 bytes of JSON escapes each)."""
    body = handoff_body("sess-slow")
    body["snapshot"]["problem_summary"] = "\U0001f525" * 2_000  # type: ignore[index]
    url = f"{base_url(api.port)}/api/v1/handoffs"
    junior = {"Authorization": f"Bearer {token(Role.engineer)}"}
    senior = {"Authorization": f"Bearer {token(Role.senior)}"}
    created = httpx.post(url, json=body, headers=junior, timeout=10)
    assert created.status_code == 201, created.text
    with httpx.Client(headers=senior, timeout=10) as client:
        for _ in range(125):  # a claim and a release: two events each
            for action in ("claim", "release"):
                answer = client.post(f"{url}/{created.json()['id']}/{action}")
                assert answer.status_code == 200, answer.text
    before = send_timeouts(api)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and it reads nothing
        sock.connect((HOST, api.port))
        sock.sendall(
            b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0\r\n"
            b"Authorization: Bearer %s\r\n\r\n" % token(Role.senior).encode()
        )
        wait_until(
            lambda: send_timeouts(api) > before, proc=api,
            what="a send_timeout disconnect counted", timeout=20,
        )  # fmt: skip
