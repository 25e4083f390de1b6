"""Per-org webhook quotas on SQLite and PostgreSQL: the number of subscriptions
(409 ``quota_exceeded``, nothing created) and the rate of on-demand sends
(``/test`` and ``/redeliver`` share one window per org: 429 ``rate_limited``
with ``Retry-After``, no delivery made). Another org is never affected."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.core.settings import Settings
from testkit.procs import GENEROUS_LIMITS
from tests.api.helpers import assert_error
from tests.conftest import REDIS_URL, TEST_SECRET, TokenFactory

WEBHOOKS = "/api/v1/webhooks"
PUBLIC_URL = "https://93.184.215.14/hooks/escalations"
MAX_WEBHOOKS = 3
SENDS = 3


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        jwt_secret=TEST_SECRET,
        **{**GENEROUS_LIMITS, "rate_limit_webhook_sends": f"{SENDS}/minute"},
        max_webhooks_per_org=MAX_WEBHOOKS,
    )


def make(client: TestClient, auth: TokenFactory, org: str = "acme", **who: Any) -> Any:
    return client.post(WEBHOOKS, json={"url": PUBLIC_URL}, headers=auth("admin", org=org, **who))


def listed(client: TestClient, auth: TokenFactory, org: str = "acme") -> list[Any]:
    return client.get(WEBHOOKS, headers=auth("admin", org=org)).json()["items"]


def test_past_the_webhook_quota_a_create_is_409_and_changes_nothing(
    client: TestClient, auth: TokenFactory
) -> None:
    made = [make(client, auth).json()["id"] for _ in range(MAX_WEBHOOKS)]
    refused = assert_error(make(client, auth), 409, "quota_exceeded")
    assert (refused["quota"], refused["limit"]) == ("webhooks", MAX_WEBHOOKS)
    assert [item["id"] for item in listed(client, auth)] == made
    assert make(client, auth, org="globex").status_code == 201  # another org's own quota

    assert client.delete(f"{WEBHOOKS}/{made[0]}", headers=auth("admin")).status_code == 204
    assert make(client, auth).status_code == 201  # room again


def test_tests_and_redeliveries_share_one_rate_limit_per_org(
    client: TestClient, auth: TokenFactory
) -> None:
    webhook = make(client, auth).json()
    path = f"{WEBHOOKS}/{webhook['id']}"
    sent = [client.post(f"{path}/test", headers=auth("admin")) for _ in range(SENDS)]
    assert [response.status_code for response in sent] == [202] * SENDS

    refused = client.post(f"{path}/test", headers=auth("admin", sub="admin-2"))  # same org
    body = assert_error(refused, 429, "rate_limited")
    assert body["limit"] == "webhook_sends" and int(refused.headers["Retry-After"]) >= 1
    delivery_id = sent[0].json()["delivery"]["id"]
    redeliver = client.post(f"{path}/deliveries/{delivery_id}/redeliver", headers=auth("admin"))
    assert_error(redeliver, 429, "rate_limited")
    log = client.get(f"{path}/deliveries", headers=auth("admin")).json()["items"]
    assert len(log) == SENDS  # the refused requests made nothing

    other = make(client, auth, org="globex").json()
    other_test = client.post(f"{WEBHOOKS}/{other['id']}/test", headers=auth("admin", org="globex"))
    assert other_test.status_code == 202
