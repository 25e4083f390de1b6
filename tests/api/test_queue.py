"""Reading the queue: order, filters, cursor pagination, org scoping, get and history."""

import base64
import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import (
    HANDOFFS,
    assert_error,
    create,
    get,
    history,
    list_all,
    slim,
    with_snapshot,
)


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def create_many(client: TestClient, headers: dict[str, str], count: int) -> list[dict[str, Any]]:
    return [create(client, headers, f"sess-{i}") for i in range(count)]


def claim(client: TestClient, headers: dict[str, str], handoff_id: str) -> None:
    assert client.post(f"{HANDOFFS}/{handoff_id}/claim", headers=headers).status_code == 200


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


# --- order -------------------------------------------------------------------------


def test_queue_order_is_priority_then_oldest_first(client: TestClient, auth) -> None:
    headers = auth("engineer")
    priorities = ["low", "urgent", "normal", "high", "urgent", "normal", "low", "high"]
    made = [
        create(client, headers, f"sess-{i}", priority=priority)
        for i, priority in enumerate(priorities)
    ]
    by_index = dict(enumerate(ids(made)))
    expected = [by_index[i] for i in (1, 4, 3, 7, 2, 5, 0, 6)]

    assert ids(list_all(client, auth("senior"))) == expected


def test_an_empty_queue(client: TestClient, auth) -> None:
    response = client.get(HANDOFFS, headers=auth("senior"))
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_listed_items_are_full_handoffs(client: TestClient, auth) -> None:
    handoff = create(client, auth("engineer"))
    assert list_all(client, auth("senior")) == [handoff]


# --- filters -----------------------------------------------------------------------


def test_status_filter(client: TestClient, auth) -> None:
    first, second, third = create_many(client, auth("engineer"), 3)
    claim(client, auth("senior"), second["id"])
    cancelled = client.post(f"{HANDOFFS}/{third['id']}/cancel", headers=auth("engineer"))
    assert cancelled.status_code == 200

    assert ids(list_all(client, auth("senior"), status="pending")) == [first["id"]]
    assert ids(list_all(client, auth("senior"), status="claimed")) == [second["id"]]
    assert ids(list_all(client, auth("senior"), status="cancelled")) == [third["id"]]
    assert list_all(client, auth("senior"), status="resolved") == []


def test_domain_filter(client: TestClient, auth) -> None:
    headers = auth("engineer")
    k8s = create(client, headers, "sess-1")
    db = create(client, headers, "sess-2", snapshot=with_snapshot(problem_domain="postgres"))

    assert ids(list_all(client, headers, domain="kubernetes")) == [k8s["id"]]
    assert ids(list_all(client, headers, domain="postgres")) == [db["id"]]
    assert list_all(client, headers, domain="networking") == []


def test_status_and_domain_filters_combine(client: TestClient, auth) -> None:
    headers = auth("engineer")
    k8s_pending, k8s_claimed = create_many(client, headers, 2)
    create(client, headers, "sess-db", snapshot=with_snapshot(problem_domain="postgres"))
    claim(client, auth("senior"), k8s_claimed["id"])

    found = list_all(client, headers, status="pending", domain="kubernetes")
    assert ids(found) == [k8s_pending["id"]]


def test_created_by_me_or_an_id_keeps_one_users_handoffs(client: TestClient, auth) -> None:
    mine = create(client, auth("engineer", sub="u-jo"), "sess-jo")
    theirs = create(client, auth("engineer", sub="u-al"), "sess-al")

    assert ids(list_all(client, auth("engineer", sub="u-jo"), created_by="me")) == [mine["id"]]
    assert ids(list_all(client, auth("senior"), created_by="u-al")) == [theirs["id"]]
    assert list_all(client, auth("senior"), created_by="u-nobody") == []


def test_claimed_by_me_or_an_id_keeps_one_seniors_claims(client: TestClient, auth) -> None:
    dana, sam = auth("senior", sub="u-dana"), auth("senior", sub="u-sam")
    first, second, unclaimed = create_many(client, auth("engineer"), 3)
    claim(client, dana, first["id"])
    claim(client, sam, second["id"])

    assert ids(list_all(client, dana, claimed_by="me")) == [first["id"]]
    assert ids(list_all(client, dana, claimed_by="u-sam")) == [second["id"]]
    assert unclaimed["id"] not in ids(list_all(client, dana, claimed_by="me"))


def test_user_filters_never_reach_another_org(client: TestClient, auth) -> None:
    create(client, auth("engineer", sub="u-jo", org="globex"), "sess-globex")
    assert list_all(client, auth("senior", org="acme"), created_by="u-jo") == []


@pytest.mark.parametrize(
    "params",
    [
        {"status": "open"},
        {"status": ""},
        {"domain": ""},
        {"domain": "d" * 65},
        {"limit": 0},
        {"limit": 201},
        {"limit": "ten"},
        {"cursor": "c" * 513},
        {"domain": "kube\x00"},
        {"created_by": ""},
        {"created_by": "u" * 129},
        {"claimed_by": "u\x00"},
    ],
    ids=[
        "bad-status",
        "empty-status",
        "empty-domain",
        "long-domain",
        "limit-0",
        "limit-201",
        "limit-text",
        "long-cursor",
        "nul-domain",
        "empty-created-by",
        "long-created-by",
        "nul-claimed-by",
    ],
)
def test_bad_query_parameters_are_422(client: TestClient, auth, params: dict[str, Any]) -> None:
    response = client.get(HANDOFFS, params=params, headers=auth("senior"))
    assert_error(response, 422, "validation_error")


# --- pagination --------------------------------------------------------------------


def walk(client: TestClient, headers: dict[str, str], **params: Any) -> list[list[str]]:
    """Every page's ids, following ``next_cursor`` to the end."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(HANDOFFS, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(ids(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "pagination does not end"


def test_pages_walk_the_whole_queue_in_order_without_duplicates(client: TestClient, auth) -> None:
    headers = auth("engineer")
    priorities = ["normal", "urgent", "low", "normal", "high", "urgent", "normal"]
    for i, priority in enumerate(priorities):
        create(client, headers, f"sess-{i}", priority=priority)
    everything = ids(list_all(client, headers))

    pages = walk(client, headers, limit=3)

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [item for page in pages for item in page] == everything
    assert len(set(everything)) == 7


def test_a_full_last_page_has_no_next_cursor(client: TestClient, auth) -> None:
    headers = auth("engineer")
    create_many(client, headers, 4)
    assert [len(page) for page in walk(client, headers, limit=2)] == [2, 2]
    assert [len(page) for page in walk(client, headers, limit=4)] == [4]


def test_pagination_respects_filters(client: TestClient, auth) -> None:
    headers = auth("engineer")
    made = create_many(client, headers, 5)
    claim(client, auth("senior"), made[2]["id"])

    pages = walk(client, headers, limit=2, status="pending")
    assert [item for page in pages for item in page] == ids(made[:2] + made[3:])


def test_the_default_page_size_is_50(client: TestClient, auth) -> None:
    headers = auth("engineer")
    create_many(client, headers, 51)
    page = client.get(HANDOFFS, headers=headers).json()
    assert len(page["items"]) == 50
    assert page["next_cursor"] is not None


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "!!!!",
        encode_cursor({"rank": 1}),
        encode_cursor([1, 2, 3]),
        encode_cursor([1, "yesterday", "x"]),
        encode_cursor(["high", "2026-01-01T00:00:00Z", "x"]),
        encode_cursor(None),
        encode_cursor([10**30, "2026-01-01T00:00:00Z", "x"]),
        encode_cursor([-1, "2026-01-01T00:00:00Z", "x"]),
        base64.urlsafe_b64encode(b'[Infinity, "2026-01-01T00:00:00Z", "x"]').decode(),
        encode_cursor([1, "0001-01-01T00:00:00+14:00", "x"]),
        encode_cursor([1, "2026-01-01T00:00:00Z", "\x00"]),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
    ],
    ids=[
        "text",
        "symbols",
        "object",
        "numbers",
        "bad-time",
        "bad-rank",
        "null",
        "huge-rank",
        "negative-rank",
        "infinite-rank",
        "time-before-year-1-utc",
        "nul-id",
        "not-utf8",
    ],
)
def test_a_bad_cursor_is_422(client: TestClient, auth, cursor: str) -> None:
    create(client, auth("engineer"))
    response = client.get(HANDOFFS, params={"cursor": cursor}, headers=auth("senior"))
    assert_error(response, 422, "invalid_cursor")


# --- org scoping ---------------------------------------------------------------------


def test_another_orgs_handoffs_are_invisible_in_the_queue(client: TestClient, auth) -> None:
    ours = create(client, auth("engineer", org="acme"))
    theirs = create(client, auth("engineer", org="globex"), "sess-9")

    assert ids(list_all(client, auth("admin", org="acme"))) == [ours["id"]]
    assert ids(list_all(client, auth("admin", org="globex"))) == [theirs["id"]]
    assert list_all(client, auth("admin", org="initech")) == []


@pytest.mark.parametrize("suffix", ["", "/history"])
def test_another_orgs_handoff_is_404(client: TestClient, auth, suffix: str) -> None:
    theirs = create(client, auth("engineer", org="globex"))
    response = client.get(f"{HANDOFFS}/{theirs['id']}{suffix}", headers=auth("admin", org="acme"))
    body = assert_error(response, 404, "handoff_not_found")
    assert "globex" not in json.dumps(body)


@pytest.mark.parametrize("suffix", ["", "/history"])
@pytest.mark.parametrize(
    "handoff_id",
    ["not-a-uuid", "42", str(uuid.uuid4()), "x" * 300, "00000000-0000-0000-0000-00000000000g"],
    ids=["word", "number", "unknown-uuid", "long", "almost-uuid"],
)
def test_unknown_or_malformed_ids_are_404(
    client: TestClient, auth, handoff_id: str, suffix: str
) -> None:
    create(client, auth("engineer"))
    response = client.get(f"{HANDOFFS}/{handoff_id}{suffix}", headers=auth("senior"))
    assert_error(response, 404, "handoff_not_found")


# --- get and history -----------------------------------------------------------------


@pytest.mark.parametrize("role", ["engineer", "senior", "admin"])
def test_every_role_may_read_the_orgs_handoffs(client: TestClient, auth, role: str) -> None:
    handoff = create(client, auth("engineer", sub="someone-else"))
    assert get(client, auth(role), handoff["id"]) == handoff
    assert ids(list_all(client, auth(role))) == [handoff["id"]]
    assert len(history(client, auth(role), handoff["id"])) == 1


def test_history_lists_events_oldest_first(client: TestClient, auth) -> None:
    senior = auth("senior", sub="u-42", name="Dana Senior")
    handoff = create(client, auth("engineer", sub="u-1", name="Ada Junior"))
    path = f"{HANDOFFS}/{handoff['id']}"
    assert client.post(f"{path}/claim", headers=senior).status_code == 200
    assert client.post(f"{path}/release", headers=senior).status_code == 200
    assert client.post(f"{path}/claim", headers=senior).status_code == 200
    resolved = client.post(f"{path}/resolve", json={"resolution_notes": "Fixed"}, headers=senior)
    assert resolved.status_code == 200

    events = history(client, auth("engineer"), handoff["id"])

    assert [event["type"] for event in events] == [
        "handoff_created",
        "handoff_claimed",
        "handoff_released",
        "handoff_claimed",
        "handoff_resolved",
    ]
    assert [event["handoff"]["status"] for event in events] == [
        "pending",
        "claimed",
        "pending",
        "claimed",
        "resolved",
    ]
    assert [event["actor_id"] for event in events] == ["u-1", "u-42", "u-42", "u-42", "u-42"]
    seqs = [event["id"] for event in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    times = [event["at"] for event in events]
    assert times == sorted(times)
    for event in events:
        assert (event["handoff_id"], event["org_id"]) == (handoff["id"], "acme")
        assert event["handoff"]["id"] == handoff["id"]
    assert events[-1]["handoff"] == slim(resolved.json())


def test_history_holds_only_that_handoffs_events(client: TestClient, auth) -> None:
    first, second = create_many(client, auth("engineer"), 2)
    claim(client, auth("senior"), second["id"])
    assert [event["type"] for event in history(client, auth("senior"), first["id"])] == [
        "handoff_created"
    ]
