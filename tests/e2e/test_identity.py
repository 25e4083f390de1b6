"""Identity on two real replicas: a token from a real ``oidc-provider-mock``
process (RS256) and one signed ES256 by a provider of our own (discovery and
JWKS on 127.0.0.1: the mock signs RS256 only) are accepted by both with role and
org mapped, and an API key revoked on one replica is refused by both within a
second."""

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from shared.auth.tokens import issue_token
from shared.core.db import make_engine
from shared.core.models import Role
from testkit import log_leaks
from testkit.procs import POLL_SECONDS, Proc, api_env, base_url, redis_url
from tests.conftest import TEST_SECRET, empty_tables, handoff_body
from tests.e2e.conftest import StartReplica
from tests.e2e.sse import SSEClient
from tests.identity import (
    CLIENT_SECRET,
    DANA,
    MAPPING,
    KeyServer,
    SigningKey,
    provider_url,
    sign_in,
    start_mock_provider,
)

pytestmark = pytest.mark.slow
log_leaks.register_secret(CLIENT_SECRET)


@pytest.fixture
def provider(process_logs: Path) -> Iterator[Proc]:
    proc = start_mock_provider(process_logs, DANA)
    yield proc
    proc.stop()


@pytest.fixture
def two_replicas(
    postgres_url: str, private_redis: Proc, provider: Proc, start_replica: StartReplica
) -> list[Proc]:
    engine = make_engine(postgres_url)
    empty_tables(engine)
    engine.dispose()
    mapping = {key: json.dumps(value) if isinstance(value, dict) else value
               for key, value in MAPPING.items()}  # fmt: skip
    env = api_env(
        database_url=postgres_url,
        redis_url=redis_url(private_redis.port),
        jwt_secret=TEST_SECRET,
        oidc_issuer=provider_url(provider),
        **mapping,
    )
    return [start_replica(env), start_replica(env)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin() -> dict[str, str]:
    token = issue_token(secret=TEST_SECRET, sub="admin-1", name="Ada Admin", role=Role.admin,
                        org="acme", ttl=timedelta(minutes=10))  # fmt: skip
    return bearer(token)


def test_a_provider_token_works_on_both_replicas(two_replicas: list[Proc], provider: Proc) -> None:
    id_token = sign_in(provider_url(provider), "dana")["id_token"]
    for api in two_replicas:
        me = httpx.get(f"{base_url(api.port)}/api/v1/me", headers=bearer(id_token), timeout=10)
        assert me.status_code == 200, me.text
        assert (me.json()["id"], me.json()["role"], me.json()["org_id"]) == (
            "dana",
            "senior",
            "acme",
        )
    forged = id_token.rsplit(".", 1)[0] + ".AAAA"
    for api in two_replicas:
        response = httpx.get(f"{base_url(api.port)}/api/v1/me", headers=bearer(forged), timeout=10)
        assert response.status_code == 401


def test_an_es256_token_works_on_both_replicas(
    postgres_url: str, private_redis: Proc, start_replica: StartReplica
) -> None:
    key = SigningKey("ES256", kid="ec-1")
    with KeyServer(key) as server:
        mapping = {name: json.dumps(value) if isinstance(value, dict) else value
                   for name, value in MAPPING.items()}  # fmt: skip
        env = api_env(
            database_url=postgres_url,
            redis_url=redis_url(private_redis.port),
            jwt_secret=TEST_SECRET,
            oidc_issuer=server.issuer,
            **mapping,
        )
        replicas = [start_replica(env), start_replica(env)]
        token = key.sign(server.claims())
        for api in replicas:
            me = httpx.get(f"{base_url(api.port)}/api/v1/me", headers=bearer(token), timeout=10)
            assert me.status_code == 200, me.text
            assert (me.json()["id"], me.json()["role"], me.json()["org_id"]) == (
                "dana",
                "senior",
                "acme",
            )


def test_a_revoked_api_key_is_refused_by_both_replicas_within_a_second(
    two_replicas: list[Proc],
) -> None:
    first, second = (base_url(api.port) for api in two_replicas)
    created = httpx.post(
        f"{first}/api/v1/api-keys", json={"name": "assistant", "role": "engineer"},
        headers=admin(), timeout=10,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    key = log_leaks.register_secret(created.json()["key"])
    handoff = httpx.post(
        f"{second}/api/v1/handoffs", json=handoff_body("s-1"), headers=bearer(key), timeout=10
    )
    assert handoff.status_code == 201, handoff.text
    assert handoff.json()["created_by_id"] == f"apikey:{created.json()['id']}"
    for url in (first, second):  # both replicas hold the key in their caches now
        assert httpx.get(f"{url}/api/v1/handoffs", headers=bearer(key)).status_code == 200
    with SSEClient(two_replicas[1].port, token=key) as stream:  # open on the other replica
        stream.wait_ready()
        revoked = httpx.delete(f"{first}/api/v1/api-keys/{created.json()['id']}", headers=admin())
        assert revoked.status_code == 204
        revoked_at = time.monotonic()
        refused_after = refusals(key, [first, second], since=revoked_at)
        # Its open stream on the other replica ended too, with the reason.
        stream.wait_for(lambda c: c.closed_by_server, timeout=5, what="the stream's end")
        last = stream.messages[-1]
        assert (last.event, last.data["reason"]) == ("session_expired", "revoked")
    assert set(refused_after) == {first, second}, refused_after
    assert max(refused_after.values()) < 1.0, refused_after
    print(f"revoked key refused after {sorted(refused_after.values())} s")


def refusals(key: str, urls: list[str], *, since: float) -> dict[str, float]:
    """Seconds after ``since`` at which each replica first refused ``key`` (3 s at most)."""
    refused_after: dict[str, float] = {}
    with httpx.Client(timeout=5) as client:
        while len(refused_after) < len(urls) and time.monotonic() - since < 3.0:
            for url in urls:
                if url not in refused_after:
                    status = client.get(f"{url}/api/v1/handoffs", headers=bearer(key)).status_code
                    if status == 401:
                        refused_after[url] = time.monotonic() - since
            time.sleep(POLL_SECONDS / 5)
    return refused_after
