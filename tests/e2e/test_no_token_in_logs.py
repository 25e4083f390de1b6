"""No token in any log, where a careless or hostile client puts one: in a query
string, in a bad ``Authorization`` header, in a path. Against a real
``escalations api`` at INFO (its access log on) and in process.

tests/conftest.py fails any test whose logs hold a JWT or a known secret; these
tests make sure there was something to catch, and that the access log still
says what was asked."""

import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from shared.auth.tokens import issue_token
from shared.core.models import Role
from testkit import log_leaks
from testkit.procs import Proc, api_env, base_url, redis_url
from tests.conftest import TEST_SECRET
from tests.e2e.conftest import StartReplica

VALID = issue_token(
    secret=TEST_SECRET, sub="u-leak", name="Leaky Larry", role=Role.senior, org="acme",
    ttl=timedelta(hours=1),
)  # fmt: skip
WRONG_SIGNATURE = issue_token(
    secret="another-secret-" + "x" * 32, sub="u-leak", name="Leaky Larry", role=Role.senior,
    org="acme", ttl=timedelta(hours=1),
)  # fmt: skip


#: Shaped like an API key (testkit/log_leaks.py catches it); no such key exists.
API_KEY = "esk_" + "Kq3" * 14 + "x"


def careless_requests(client: httpx.Client | TestClient) -> None:
    """Each answered 401 or 404 (or 200), and each with a token or API key somewhere."""
    answers = [
        client.get(f"/api/v1/handoffs?token={VALID}&status=pending"),
        client.get(f"/api/v1/events?access_token={VALID}"),
        client.get("/api/v1/handoffs", headers={"Authorization": f"Bearer {WRONG_SIGNATURE}"}),
        client.get("/api/v1/handoffs", headers={"Authorization": f"Token {VALID}"}),
        client.get("/api/v1/handoffs", headers={"Authorization": f"Bearer {VALID}x.y"}),
        client.get(f"/api/v1/handoffs/{VALID}", headers={"Authorization": f"Bearer {VALID}"}),
        client.get(f"/metrics?{VALID}", headers={"Authorization": f"Bearer {VALID}"}),
        client.get("/api/v1/handoffs", headers={"Authorization": f"Bearer {API_KEY}"}),
        client.get(f"/api/v1/handoffs/{API_KEY}", headers={"Authorization": f"Bearer {VALID}"}),
        client.get(f"/api/v1/handoffs?{API_KEY}", headers={"Authorization": f"Bearer {VALID}"}),
    ]
    statuses = [answer.status_code for answer in answers]
    assert statuses == [401, 401, 401, 401, 401, 404, 200, 401, 404, 200]


@pytest.fixture
def api(sqlite_url: str, private_redis: Proc, start_replica: StartReplica) -> Iterator[Proc]:
    env = api_env(
        database_url=sqlite_url, redis_url=redis_url(private_redis.port), jwt_secret=TEST_SECRET,
        log_level="INFO",
    )  # fmt: skip
    yield start_replica(env)


@pytest.mark.slow
def test_a_real_replica_logs_no_token_it_was_sent(api: Proc) -> None:
    with httpx.Client(base_url=base_url(api.port), timeout=10) as client:
        careless_requests(client)
    api.stop()
    assert log_leaks.take() == []
    access = [
        entry["message"]
        for entry in map(json.loads, api.log_text().splitlines())
        if entry["logger"] == "escalations.access"
    ]
    assert any('"GET /api/v1/handoffs?token=*&status=*" 401' in line for line in access), access
    assert any('"GET /api/v1/handoffs/[jwt]" 404' in line for line in access), access
    assert any('"GET /metrics?[jwt]" 200' in line for line in access), access
    assert any('"GET /api/v1/handoffs/[api-key]" 404' in line for line in access), access
    assert any('"GET /api/v1/handoffs?[api-key]" 200' in line for line in access), access


def test_in_process_logs_hold_no_token(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    loopback = TestClient(client.app, client=("127.0.0.1", 50000))
    with caplog.at_level("INFO", logger="escalations.access"):
        careless_requests(loopback)
    assert log_leaks.take() == []
    lines = [record.getMessage() for record in caplog.records if record.name.endswith("access")]
    assert len(lines) == 10, lines
    assert '"GET /api/v1/events?access_token=*" 401' in lines[1]


def test_the_check_itself_catches_a_token_in_a_record() -> None:
    logging.getLogger("escalations.test").warning("careless: %s", VALID)
    found = log_leaks.take()  # taken here, so this test does not fail for it
    assert len(found) == 1 and "escalations.test" in found[0]
    log_leaks.report("some process log", f"secret was {TEST_SECRET}")
    assert len(log_leaks.take()) == 1
    assert (
        log_leaks.without_up_banner(
            "log line\nEscalation Mode is running at http://x\n  senior eyJa.b.c\n"
            "Press Ctrl-C to stop everything.\nlater log line"
        )
        == "log line\nPress Ctrl-C to stop everything.\nlater log line"
    )
