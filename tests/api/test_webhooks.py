"""``/api/v1/webhooks`` on SQLite and PostgreSQL: subscriptions (admin only, the
secret shown on create and rotate alone), URL safety at write time, deliveries
created with each matching event in its own transaction, the delivery log,
test and redeliver, and org isolation."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from shared.webhooks.models import SUBSCRIBABLE
from tests.api.helpers import HANDOFFS, assert_error, create
from tests.conftest import TokenFactory, handoff_body

WEBHOOKS = "/api/v1/webhooks"
#: A public address (no lookup needed): private networks are not allowed in these tests.
PUBLIC_URL = "https://93.184.215.14/hooks/escalations"


def make_webhook(
    client: TestClient, auth: TokenFactory, org: str = "acme", **body: Any
) -> dict[str, Any]:
    response = client.post(
        WEBHOOKS, json={"url": PUBLIC_URL, **body}, headers=auth("admin", org=org)
    )
    assert response.status_code == 201, response.text
    return response.json()


def log_of(client: TestClient, auth: TokenFactory, webhook_id: str, **params: Any) -> Any:
    response = client.get(
        f"{WEBHOOKS}/{webhook_id}/deliveries", params=params, headers=auth("admin")
    )
    assert response.status_code == 200, response.text
    return response.json()


# --- subscriptions ------------------------------------------------------------------


def test_create_read_patch_rotate_delete(client: TestClient, auth: TokenFactory) -> None:
    created = make_webhook(client, auth, description="Pager bridge")
    assert set(created) == {
        "id", "url", "events", "format", "description", "enabled", "disabled_reason",
        "circuit", "consecutive_failures", "paused_until", "secret", "created_at", "updated_at",
    }  # fmt: skip
    assert (created["circuit"], created["consecutive_failures"], created["paused_until"]) == (
        "closed",
        0,
        None,
    )
    assert created["events"] == list(SUBSCRIBABLE)  # every handoff_* type by default
    assert (created["format"], created["enabled"], created["url"]) == (
        "standard",
        True,
        PUBLIC_URL,
    )
    assert created["secret"].startswith("whsec_") and len(created["secret"]) >= 6 + 32
    path = f"{WEBHOOKS}/{created['id']}"
    shown = client.get(path, headers=auth("admin")).json()
    assert "secret" not in shown
    assert shown == {key: value for key, value in created.items() if key != "secret"}
    assert client.get(WEBHOOKS, headers=auth("admin")).json() == {"items": [shown]}

    patched = client.patch(
        path,
        json={"events": ["handoff_claimed"], "format": "slack", "enabled": False},
        headers=auth("admin"),
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["events"] == ["handoff_claimed"]
    assert (body["format"], body["enabled"]) == ("slack", False)
    assert body["description"] == "Pager bridge" and "secret" not in body

    rotated = client.post(f"{path}/rotate-secret", headers=auth("admin"))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]

    assert client.delete(path, headers=auth("admin")).status_code == 204
    assert_error(client.get(path, headers=auth("admin")), 404, "webhook_not_found")
    assert client.get(WEBHOOKS, headers=auth("admin")).json() == {"items": []}


@pytest.mark.parametrize("role", ["engineer", "senior"])
def test_only_admins_touch_webhooks(client: TestClient, auth: TokenFactory, role: str) -> None:
    webhook = make_webhook(client, auth)
    headers = auth(role)
    path = f"{WEBHOOKS}/{webhook['id']}"
    calls = [
        client.post(WEBHOOKS, json={"url": PUBLIC_URL}, headers=headers),
        client.get(WEBHOOKS, headers=headers),
        client.get(path, headers=headers),
        client.patch(path, json={"enabled": False}, headers=headers),
        client.delete(path, headers=headers),
        client.post(f"{path}/rotate-secret", headers=headers),
        client.post(f"{path}/test", headers=headers),
        client.get(f"{path}/deliveries", headers=headers),
    ]
    for response in calls:
        assert_error(response, 403, "insufficient_role")
    assert client.get(path, headers=auth("admin")).json()["enabled"] is True


def test_another_orgs_webhooks_and_deliveries_are_404(
    client: TestClient, auth: TokenFactory
) -> None:
    theirs = make_webhook(client, auth, org="globex")
    create(client, auth("engineer", org="globex"))
    their_log = client.get(
        f"{WEBHOOKS}/{theirs['id']}/deliveries", headers=auth("admin", org="globex")
    ).json()["items"]
    assert [item["event_type"] for item in their_log] == ["handoff_created"]
    ours, path = auth("admin"), f"{WEBHOOKS}/{theirs['id']}"
    assert client.get(WEBHOOKS, headers=ours).json() == {"items": []}
    for response in (
        client.get(path, headers=ours),
        client.patch(path, json={"enabled": False}, headers=ours),
        client.delete(path, headers=ours),
        client.post(f"{path}/rotate-secret", headers=ours),
        client.post(f"{path}/test", headers=ours),
        client.get(f"{path}/deliveries", headers=ours),
        client.post(f"{path}/deliveries/{their_log[0]['id']}/redeliver", headers=ours),
    ):
        assert_error(response, 404, "webhook_not_found")
    # Our own webhook cannot reach their delivery either.
    mine = make_webhook(client, auth)
    response = client.post(
        f"{WEBHOOKS}/{mine['id']}/deliveries/{their_log[0]['id']}/redeliver", headers=ours
    )
    assert_error(response, 404, "delivery_not_found")
    assert client.get(path, headers=auth("admin", org="globex")).json()["enabled"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": ["handoff_created", "handoff_created"]}, "events"),
        ({"events": ["webhook_test"]}, "events"),
        ({"events": ["nope"]}, "events"),
        ({"format": "teams"}, "format"),
        ({"url": ""}, "url"),
        ({"url": "https://x.example/" + "a" * 2048}, "url"),
        ({"description": "d" * 501}, "description"),
        ({"secret": "whsec_mine"}, "secret"),
    ],
)
def test_invalid_bodies_are_422(
    client: TestClient, auth: TokenFactory, body: dict[str, Any], field: str
) -> None:
    response = client.post(WEBHOOKS, json={"url": PUBLIC_URL, **body}, headers=auth("admin"))
    error = assert_error(response, 422, "validation_error")
    assert field in error["detail"]
    assert client.get(WEBHOOKS, headers=auth("admin")).json() == {"items": []}


@pytest.mark.parametrize("enabled", ["false", 0, "no", None])
def test_enabled_is_a_json_boolean(client: TestClient, auth: TokenFactory, enabled: Any) -> None:
    """Lax mode took ``"false"``, ``0`` and ``"no"`` for False."""
    webhook = make_webhook(client, auth)
    path = f"{WEBHOOKS}/{webhook['id']}"
    response = client.patch(path, json={"enabled": enabled}, headers=auth("admin"))
    if enabled is None:  # an explicit null is an absent field: nothing to change
        assert response.status_code == 200, response.text
    else:
        assert "enabled" in assert_error(response, 422, "validation_error")["detail"]
    assert client.get(path, headers=auth("admin")).json()["enabled"] is True


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.215.14/x",
        "/relative/path",
        "https://user:pass@93.184.215.14/x",
        "http://93.184.215.14:0/x",
        "https://",
        # Invalid IDNA A-labels: httpx raises only when the host is read (was a 500).
        "http://xn--localhost-/",
        "http://xn--/",
        "http://xn--zz/",
        # Out of range: httpx reads any integer and the connection wraps it (was accepted).
        "http://93.184.215.14:99999/x",
        "http://93.184.215.14:65536/x",
        "http://93.184.215.14:-1/x",
    ],
)
def test_a_url_that_is_not_an_http_url_is_refused(
    client: TestClient, auth: TokenFactory, url: str
) -> None:
    response = client.post(WEBHOOKS, json={"url": url}, headers=auth("admin"))
    assert_error(response, 422, "invalid_webhook_url")
    webhook = make_webhook(client, auth)
    patched = client.patch(f"{WEBHOOKS}/{webhook['id']}", json={"url": url}, headers=auth("admin"))
    assert_error(patched, 422, "invalid_webhook_url")
    assert [
        item["url"] for item in client.get(WEBHOOKS, headers=auth("admin")).json()["items"]
    ] == [PUBLIC_URL]


def test_the_highest_port_is_accepted(client: TestClient, auth: TokenFactory) -> None:
    url = "https://93.184.215.14:65535/x"
    assert make_webhook(client, auth, url=url)["url"] == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://localhost/hook", "loopback"),  # a name: refused by what it resolves to
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://100.64.0.1/hook", "non-public"),
        ("http://224.0.0.1/hook", "multicast"),
        # 6to4 (2002::/16) embeds an IPv4 address a relay would reach (were accepted).
        ("http://[2002:a00:1::1]/hook", "private"),  # 10.0.0.1
        ("http://[2002:7f00:1::]/hook", "loopback"),  # 127.0.0.1
        ("http://[2002:a9fe:a9fe::1]/hook", "link-local"),  # 169.254.169.254
        ("http://[fec0::1]/hook", "site-local"),  # deprecated site-local (was accepted)
    ],
)
def test_a_non_public_address_is_refused(
    client: TestClient, auth: TokenFactory, url: str, reason: str
) -> None:
    response = client.post(WEBHOOKS, json={"url": url}, headers=auth("admin"))
    body = assert_error(response, 422, "webhook_url_forbidden")
    assert body["reason"] in (reason, "private")  # some ranges are both
    webhook = make_webhook(client, auth)
    patched = client.patch(f"{WEBHOOKS}/{webhook['id']}", json={"url": url}, headers=auth("admin"))
    assert_error(patched, 422, "webhook_url_forbidden")
    assert client.get(f"{WEBHOOKS}/{webhook['id']}", headers=auth("admin")).json()["url"] == (
        PUBLIC_URL
    )


def test_a_6to4_address_of_a_public_ipv4_is_accepted(
    client: TestClient, auth: TokenFactory
) -> None:
    url = "https://[2002:5db8:d70e::1]/hook"  # 93.184.215.14
    assert make_webhook(client, auth, url=url)["url"] == url


def test_a_host_that_does_not_resolve_is_refused(client: TestClient, auth: TokenFactory) -> None:
    response = client.post(
        WEBHOOKS, json={"url": "https://no-such-host.invalid/x"}, headers=auth("admin")
    )
    assert_error(response, 422, "webhook_url_unresolvable")


# --- deliveries from the outbox -------------------------------------------------------


def test_each_matching_enabled_subscription_gets_one_delivery_per_event(
    client: TestClient, auth: TokenFactory
) -> None:
    everything = make_webhook(client, auth)
    claims_only = make_webhook(client, auth, events=["handoff_claimed"])
    disabled = make_webhook(client, auth)
    client.patch(f"{WEBHOOKS}/{disabled['id']}", json={"enabled": False}, headers=auth("admin"))
    handoff = create(client, auth("engineer"))
    claimed = client.post(f"{HANDOFFS}/{handoff['id']}/claim", headers=auth("senior"))
    assert claimed.status_code == 200, claimed.text

    items = log_of(client, auth, everything["id"])["items"]
    assert [item["event_type"] for item in items] == ["handoff_claimed", "handoff_created"]
    history = client.get(f"{HANDOFFS}/{handoff['id']}/history", headers=auth("admin")).json()
    seqs = {event["type"]: event["id"] for event in history["items"]}
    assert {item["event_type"]: item["event_id"] for item in items} == {
        "handoff_created": seqs["handoff_created"],
        "handoff_claimed": seqs["handoff_claimed"],
    }
    first = items[-1]
    assert set(first) == {
        "id", "event_id", "event_type", "status", "attempts", "last_status_code",
        "last_error", "next_attempt_at", "paused_until", "delivered_at", "created_at",
    }  # fmt: skip
    assert (first["status"], first["attempts"], first["delivered_at"]) == ("pending", 0, None)
    assert first["paused_until"] is None
    assert [i["event_type"] for i in log_of(client, auth, claims_only["id"])["items"]] == [
        "handoff_claimed"
    ]
    assert log_of(client, auth, disabled["id"])["items"] == []


def test_a_rejected_request_makes_no_delivery(client: TestClient, auth: TokenFactory) -> None:
    webhook = make_webhook(client, auth)
    create(client, auth("engineer"), "sess-once")
    again = client.post(HANDOFFS, json=handoff_body("sess-once"), headers=auth("engineer"))
    assert_error(again, 409, "session_already_escalated")
    assert len(log_of(client, auth, webhook["id"])["items"]) == 1


def test_deliveries_are_rows_written_with_the_event(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    """The delivery and its event commit together: same org, same seq."""
    make_webhook(client, auth)
    make_webhook(client, auth, org="globex")
    create(client, auth("engineer"))
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT d.org_id, d.event_seq, e.type FROM webhook_deliveries d"
                " JOIN events e ON e.org_id = d.org_id AND e.seq = d.event_seq"
            )
        ).all()
    assert [tuple(row) for row in rows] == [("acme", 1, "handoff_created")]


def test_the_log_pages_newest_first(client: TestClient, auth: TokenFactory) -> None:
    webhook = make_webhook(client, auth, events=["handoff_created"])
    for number in range(5):
        create(client, auth("engineer"), f"sess-{number}")
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = log_of(client, auth, webhook["id"], **params)
        seen += [item["event_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [5, 4, 3, 2, 1]
    response = client.get(
        f"{WEBHOOKS}/{webhook['id']}/deliveries",
        params={"cursor": "not-a-cursor"},
        headers=auth("admin"),
    )
    assert_error(response, 422, "invalid_cursor")


def test_test_makes_one_webhook_test_delivery(client: TestClient, auth: TokenFactory) -> None:
    webhook = make_webhook(client, auth)
    path = f"{WEBHOOKS}/{webhook['id']}"
    response = client.post(f"{path}/test", headers=auth("admin"))
    assert response.status_code == 202, response.text
    delivery = response.json()["delivery"]
    assert (delivery["event_type"], delivery["event_id"], delivery["status"]) == (
        "webhook_test",
        None,
        "pending",
    )
    assert [item["id"] for item in log_of(client, auth, webhook["id"])["items"]] == [delivery["id"]]
    redeliver = client.post(f"{path}/deliveries/{delivery['id']}/redeliver", headers=auth("admin"))
    assert_error(redeliver, 409, "delivery_pending")
    missing = client.post(f"{path}/deliveries/nope/redeliver", headers=auth("admin"))
    assert_error(missing, 404, "delivery_not_found")

    client.patch(path, json={"enabled": False}, headers=auth("admin"))
    assert_error(client.post(f"{path}/test", headers=auth("admin")), 409, "webhook_disabled")


@pytest.mark.parametrize("delivery_id", ["%00", "a%00b", "%C3%A9", "x" * 300])
def test_a_delivery_id_that_is_no_uuid_is_404(
    client: TestClient, auth: TokenFactory, delivery_id: str
) -> None:
    """PostgreSQL refused a NUL in the compared id (DataError, a 500)."""
    webhook = make_webhook(client, auth)
    path = f"{WEBHOOKS}/{webhook['id']}/deliveries/{delivery_id}/redeliver"
    assert_error(client.post(path, headers=auth("admin")), 404, "delivery_not_found")


def test_deleting_a_webhook_deletes_its_deliveries(
    client: TestClient, auth: TokenFactory, engine: Engine
) -> None:
    webhook = make_webhook(client, auth)
    create(client, auth("engineer"))
    assert client.delete(f"{WEBHOOKS}/{webhook['id']}", headers=auth("admin")).status_code == 204
    with engine.connect() as connection:
        for table in ("webhook_deliveries", "webhook_event_types", "webhooks"):
            assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
