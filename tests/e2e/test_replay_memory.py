"""Replay memory on a real replica: 100 handoffs with ~200 KB transcripts, then
20 SSE clients reconnect with ``Last-Event-ID: 0`` at once and read everything.
The replica's RSS must grow by less than ``RSS_GROWTH_BOUND`` (the old replay,
500 events per batch decoded into Python objects, grew it by several hundred
MiB here), and every client must get every event, in order, once."""

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest

from shared.auth.tokens import issue_token
from shared.core.db import make_engine
from shared.core.models import Role
from testkit.procs import Proc, api_env, base_url, redis_url, rss_kib
from tests.conftest import TEST_SECRET, empty_tables, handoff_body
from tests.e2e.conftest import StartReplica

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EVENTS = 100
CLIENTS = 20
TRANSCRIPT = [{"role": "user", "content": "x" * 480} for _ in range(400)]  # ~200 KB of JSON
RSS_GROWTH_BOUND = 150 * 2**20
READ_TIMEOUT_SECONDS = 180.0
FRAME_HEAD = re.compile(rb"id: (\d+)\nevent: (\w+)\ndata: (.{0,40})", re.DOTALL)


def token(sub: str) -> str:
    return issue_token(
        secret=TEST_SECRET, sub=sub, name=sub, role=Role.senior, org="acme",
        ttl=timedelta(hours=1),
    )  # fmt: skip


@dataclass
class ReplayReader:
    """Reads one stream over a raw socket until its ``ready`` event, keeping only
    each frame's id and type (not 20 MB of JSON per client)."""

    port: int
    bearer: str
    ids: list[int] = field(default_factory=list)
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            self._read()
        except Exception as exc:  # reported by the test
            self.error = repr(exc)
        finally:
            self.done.set()

    def _read(self) -> None:
        request = (
            f"GET /api/v1/events HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {self.bearer}\r\nLast-Event-ID: 0\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(request)
            buffer, start = bytearray(), -1
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise AssertionError("the stream closed before its ready event")
                buffer += chunk
                if start == -1:  # still in the HTTP head
                    head_end = buffer.find(b"\r\n\r\n")
                    if head_end == -1:
                        continue
                    assert buffer.startswith(b"HTTP/1.1 200") or buffer.startswith(b"HTTP/1.0 200")
                    start = head_end + 4
                while (end := buffer.find(b"\n\n", start)) != -1:
                    if self._frame(bytes(buffer[start : start + 80])):
                        return
                    start = end + 2
                if start > 1 << 20:
                    del buffer[:start]
                    start = 0

    def _frame(self, head: bytes) -> bool:
        """Records a handoff event; True at ``ready``."""
        match = FRAME_HEAD.search(head)
        if match is None:
            return False  # the HTTP head, or a heartbeat comment
        seq, event = int(match[1]), match[2].decode()
        if event == "ready":
            return True
        assert match[3].startswith(b'{"id":%d,' % seq), head
        self.ids.append(seq)
        return False


def create_big_handoffs(api: Proc) -> None:
    with httpx.Client(base_url=base_url(api.port), timeout=30) as client:
        for n in range(EVENTS):
            body = handoff_body(f"sess-{n}")
            body["snapshot"]["transcript"] = TRANSCRIPT  # type: ignore[index]
            headers = {"Authorization": f"Bearer {token(f'junior-{n % 10}')}"}
            response = client.post("/api/v1/handoffs", json=body, headers=headers)
            assert response.status_code == 201, response.text


def test_twenty_replays_from_zero_of_big_events_keep_the_replica_small(
    postgres_url: str, private_redis: Proc, start_replica: StartReplica
) -> None:
    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    env = api_env(
        database_url=postgres_url, redis_url=redis_url(private_redis.port), jwt_secret=TEST_SECRET,
        rate_limits_enabled="false",
    )  # fmt: skip
    api = start_replica(env)
    create_big_handoffs(api)
    warm_up = ReplayReader(api.port, token("senior-warm-up"))
    warm_up.run()
    assert warm_up.ids == list(range(1, EVENTS + 1)), warm_up.error
    baseline = 1024 * rss_kib(api.popen.pid)

    readers = [ReplayReader(api.port, token(f"senior-{n}")) for n in range(CLIENTS)]
    peak = baseline
    threads = [threading.Thread(target=reader.run, daemon=True) for reader in readers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + READ_TIMEOUT_SECONDS
    while not all(reader.done.is_set() for reader in readers):
        assert time.monotonic() < deadline, "the replays did not finish in time"
        assert api.running, api.log_tail()
        peak = max(peak, 1024 * rss_kib(api.popen.pid))
        time.sleep(0.05)  # sampling RSS, not waiting for a condition
    peak = max(peak, 1024 * rss_kib(api.popen.pid))

    for reader in readers:
        assert reader.error is None, reader.error
        assert reader.ids == list(range(1, EVENTS + 1))  # every event, in order, once
    growth = peak - baseline
    print(f"replica RSS {baseline / 2**20:.0f} MiB -> peak {peak / 2**20:.0f} MiB")
    assert growth < RSS_GROWTH_BOUND, f"RSS grew {growth / 2**20:.0f} MiB during the replays"
