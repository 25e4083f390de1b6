"""Claim, release, resolve and cancel: who may do what, the exact lost-race body,
one event per state change, and rejected requests that change nothing."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import (
    HANDOFFS,
    assert_error,
    create,
    event_types,
    get,
    history,
    slim,
    state,
)
from tests.conftest import handoff_body

Headers = dict[str, str]

NOTES = {"resolution_notes": "Raised the memory limit to 1Gi; no restarts since."}


@pytest.fixture
def people(auth) -> dict[str, Headers]:
    return {
        "junior": auth("engineer", sub="u-1", name="Ada Junior"),
        "other_junior": auth("engineer", sub="u-2", name="Bob Junior"),
        "dana": auth("senior", sub="u-42", name="Dana Senior"),
        "eli": auth("senior", sub="u-43", name="Eli Senior"),
        "admin": auth("admin", sub="u-99", name="Ola Admin"),
        "outsider": auth("admin", sub="u-500", name="Zed Globex", org="globex"),
    }


@pytest.fixture
def handoff(client: TestClient, people: dict[str, Headers]) -> dict[str, Any]:
    return create(client, people["junior"])


def act(
    client: TestClient, action: str, handoff_id: str, headers: Headers, body: Any = None
) -> Any:
    if action == "resolve" and body is None:
        body = NOTES
    return client.post(f"{HANDOFFS}/{handoff_id}/{action}", json=body, headers=headers)


def ok(client: TestClient, action: str, handoff_id: str, headers: Headers) -> dict[str, Any]:
    response = act(client, action, handoff_id, headers)
    assert response.status_code == 200, response.text
    return response.json()


def rejected(
    client: TestClient,
    people: dict[str, Headers],
    handoff_id: str,
    request: tuple[str, str] | tuple[str, str, Any],
    status: int,
    code: str,
) -> dict[str, Any]:
    """``request`` = (action, who[, body]) must fail with ``status``/``code`` and
    change neither the handoff nor its history."""
    action, who, *body = request
    before = state(client, people["admin"], handoff_id)
    error = assert_error(act(client, action, handoff_id, people[who], *body), status, code)
    assert state(client, people["admin"], handoff_id) == before
    return error


# --- claim ---------------------------------------------------------------------------


def test_claim(client: TestClient, people, handoff) -> None:
    claimed = ok(client, "claim", handoff["id"], people["dana"])

    assert claimed["status"] == "claimed"
    assert (claimed["claimed_by_id"], claimed["claimed_by_name"]) == ("u-42", "Dana Senior")
    assert claimed["claimed_at"].endswith("Z")
    assert claimed["updated_at"] >= claimed["claimed_at"] > handoff["created_at"]
    assert get(client, people["junior"], handoff["id"]) == claimed
    assert event_types(client, people["admin"], handoff["id"]) == [
        "handoff_created",
        "handoff_claimed",
    ]
    assert history(client, people["admin"], handoff["id"])[-1]["handoff"] == slim(claimed)


def test_admin_may_claim(client: TestClient, people, handoff) -> None:
    assert ok(client, "claim", handoff["id"], people["admin"])["claimed_by_id"] == "u-99"


def test_claiming_your_own_claim_again_is_200_and_writes_nothing(
    client: TestClient, people, handoff
) -> None:
    first = ok(client, "claim", handoff["id"], people["dana"])
    before = state(client, people["admin"], handoff["id"])

    again = ok(client, "claim", handoff["id"], people["dana"])

    assert again == first
    assert state(client, people["admin"], handoff["id"]) == before


def test_a_lost_claim_is_409_naming_the_winner_exactly(client: TestClient, people, handoff) -> None:
    won = ok(client, "claim", handoff["id"], people["dana"])

    lost = ("claim", "eli")
    body = rejected(client, people, handoff["id"], lost, 409, "handoff_already_claimed")

    assert body == {
        "error": "handoff_already_claimed",
        "detail": "Already claimed by Dana Senior.",
        "claimed_by_id": "u-42",
        "claimed_by_name": "Dana Senior",
        "claimed_at": won["claimed_at"],
    }


def test_an_admin_losing_the_race_gets_the_same_409(client: TestClient, people, handoff) -> None:
    won = ok(client, "claim", handoff["id"], people["dana"])
    body = assert_error(act(client, "claim", handoff["id"], people["admin"]), 409)
    assert body["claimed_by_id"] == "u-42" and body["claimed_at"] == won["claimed_at"]


@pytest.mark.parametrize("closing", ["resolve", "cancel"])
def test_claiming_a_closed_handoff_is_409(client: TestClient, people, handoff, closing) -> None:
    if closing == "resolve":
        ok(client, "claim", handoff["id"], people["dana"])
        ok(client, "resolve", handoff["id"], people["dana"])
    else:
        ok(client, "cancel", handoff["id"], people["junior"])
    rejected(client, people, handoff["id"], ("claim", "eli"), 409, "invalid_state")


# --- role and ownership rules -------------------------------------------------------


@pytest.mark.parametrize("action", ["claim", "release", "resolve"])
@pytest.mark.parametrize("claimed", [False, True], ids=["pending", "claimed"])
def test_engineers_may_not_claim_release_or_resolve(
    client: TestClient, people, handoff, action: str, claimed: bool
) -> None:
    if claimed:
        ok(client, "claim", handoff["id"], people["dana"])
    rejected(client, people, handoff["id"], (action, "junior"), 403, "insufficient_role")


@pytest.mark.parametrize("action", ["claim", "release", "resolve", "cancel"])
def test_another_orgs_handoff_is_404_for_every_action(
    client: TestClient, people, handoff, action: str
) -> None:
    rejected(client, people, handoff["id"], (action, "outsider"), 404, "handoff_not_found")


@pytest.mark.parametrize("action", ["claim", "release", "resolve", "cancel"])
@pytest.mark.parametrize("handoff_id", ["nope", "00000000-0000-4000-8000-000000000000"])
def test_unknown_handoff_is_404_for_every_action(
    client: TestClient, people, action: str, handoff_id: str
) -> None:
    assert_error(act(client, action, handoff_id, people["admin"]), 404, "handoff_not_found")


# --- release -------------------------------------------------------------------------


def test_release_by_the_owner_clears_the_claim(client: TestClient, people, handoff) -> None:
    ok(client, "claim", handoff["id"], people["dana"])

    released = ok(client, "release", handoff["id"], people["dana"])

    assert released["status"] == "pending"
    assert (released["claimed_by_id"], released["claimed_by_name"], released["claimed_at"]) == (
        None,
        None,
        None,
    )
    assert get(client, people["junior"], handoff["id"]) == released
    assert event_types(client, people["admin"], handoff["id"])[-1] == "handoff_released"
    assert ok(client, "claim", handoff["id"], people["eli"])["claimed_by_id"] == "u-43"


def test_another_senior_may_not_release_a_claim(client: TestClient, people, handoff) -> None:
    ok(client, "claim", handoff["id"], people["dana"])
    rejected(client, people, handoff["id"], ("release", "eli"), 403, "not_claim_owner")


def test_an_admin_may_release_anyones_claim(client: TestClient, people, handoff) -> None:
    ok(client, "claim", handoff["id"], people["dana"])
    released = ok(client, "release", handoff["id"], people["admin"])
    assert released["status"] == "pending" and released["claimed_by_id"] is None
    assert history(client, people["admin"], handoff["id"])[-1]["actor_id"] == "u-99"


def test_releasing_a_pending_handoff_is_409(client: TestClient, people, handoff) -> None:
    rejected(client, people, handoff["id"], ("release", "dana"), 409, "invalid_state")


# --- resolve -------------------------------------------------------------------------


def test_resolve_your_own_claim_with_notes(client: TestClient, people, handoff) -> None:
    ok(client, "claim", handoff["id"], people["dana"])

    resolved = ok(client, "resolve", handoff["id"], people["dana"])

    assert resolved["status"] == "resolved"
    assert resolved["resolution_notes"] == NOTES["resolution_notes"]
    assert resolved["resolved_at"].endswith("Z")
    assert resolved["resolved_at"] >= resolved["claimed_at"]
    assert resolved["claimed_by_id"] == "u-42"  # who resolved it stays on record
    assert get(client, people["junior"], handoff["id"]) == resolved
    assert event_types(client, people["admin"], handoff["id"])[-1] == "handoff_resolved"


@pytest.mark.parametrize("who", ["eli", "admin"])
def test_resolving_someone_elses_claim_is_403(client: TestClient, people, handoff, who) -> None:
    ok(client, "claim", handoff["id"], people["dana"])
    rejected(client, people, handoff["id"], ("resolve", who), 403, "not_claim_owner")


def test_resolving_a_pending_handoff_is_409(client: TestClient, people, handoff) -> None:
    rejected(client, people, handoff["id"], ("resolve", "dana"), 409, "invalid_state")


def test_resolving_twice_is_409(client: TestClient, people, handoff) -> None:
    ok(client, "claim", handoff["id"], people["dana"])
    ok(client, "resolve", handoff["id"], people["dana"])
    rejected(client, people, handoff["id"], ("resolve", "dana"), 409, "invalid_state")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"resolution_notes": ""},
        {"resolution_notes": "n" * 10_001},
        {"resolution_notes": 42},
        {"resolution_notes": "fixed", "status": "cancelled"},
        {"resolution_notes": "fixed\x00"},
        [],
    ],
    ids=["missing", "empty", "too-long", "number", "extra-field", "nul", "array"],
)
def test_bad_resolve_bodies_are_422(client: TestClient, people, handoff, body: Any) -> None:
    ok(client, "claim", handoff["id"], people["dana"])
    rejected(client, people, handoff["id"], ("resolve", "dana", body), 422, "validation_error")


def test_malformed_resolve_json_is_422(client: TestClient, people, handoff) -> None:
    ok(client, "claim", handoff["id"], people["dana"])
    before = state(client, people["admin"], handoff["id"])
    headers = {**people["dana"], "Content-Type": "application/json"}
    response = client.post(
        f"{HANDOFFS}/{handoff['id']}/resolve", content=b'{"resolution_notes": ', headers=headers
    )
    assert_error(response, 422, "validation_error")
    assert state(client, people["admin"], handoff["id"]) == before


# --- cancel --------------------------------------------------------------------------


def test_the_creator_may_cancel(client: TestClient, people, handoff) -> None:
    cancelled = ok(client, "cancel", handoff["id"], people["junior"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["updated_at"] > handoff["updated_at"]
    assert get(client, people["admin"], handoff["id"]) == cancelled
    assert event_types(client, people["admin"], handoff["id"]) == [
        "handoff_created",
        "handoff_cancelled",
    ]


@pytest.mark.parametrize("who", ["other_junior", "dana"])
def test_only_the_creator_may_cancel(client: TestClient, people, handoff, who: str) -> None:
    rejected(client, people, handoff["id"], ("cancel", who), 403, "not_creator")


def test_a_senior_may_cancel_their_own_handoff(client: TestClient, people) -> None:
    own = create(client, people["dana"])
    assert ok(client, "cancel", own["id"], people["dana"])["status"] == "cancelled"


def test_an_admin_may_cancel_anyones_handoff(client: TestClient, people, handoff) -> None:
    assert ok(client, "cancel", handoff["id"], people["admin"])["status"] == "cancelled"
    assert history(client, people["admin"], handoff["id"])[-1]["actor_id"] == "u-99"


@pytest.mark.parametrize("who", ["junior", "admin"])
def test_cancelling_a_claimed_handoff_is_409(client: TestClient, people, handoff, who) -> None:
    ok(client, "claim", handoff["id"], people["dana"])
    rejected(client, people, handoff["id"], ("cancel", who), 409, "invalid_state")


def test_cancelling_twice_is_409(client: TestClient, people, handoff) -> None:
    ok(client, "cancel", handoff["id"], people["junior"])
    rejected(client, people, handoff["id"], ("cancel", "junior"), 409, "invalid_state")


def test_cancelling_a_resolved_handoff_is_409(client: TestClient, people, handoff) -> None:
    ok(client, "claim", handoff["id"], people["dana"])
    ok(client, "resolve", handoff["id"], people["dana"])
    rejected(client, people, handoff["id"], ("cancel", "junior"), 409, "invalid_state")


# --- one event per state change ------------------------------------------------------


def test_each_state_change_writes_exactly_one_event(client: TestClient, people, handoff) -> None:
    steps = [
        ("claim", "dana", "handoff_claimed", "claimed"),
        ("release", "dana", "handoff_released", "pending"),
        ("claim", "eli", "handoff_claimed", "claimed"),
        ("release", "admin", "handoff_released", "pending"),
        ("claim", "eli", "handoff_claimed", "claimed"),
        ("resolve", "eli", "handoff_resolved", "resolved"),
    ]
    for action, who, event_type, status in steps:
        before = history(client, people["admin"], handoff["id"])
        changed = ok(client, action, handoff["id"], people[who])
        after = history(client, people["admin"], handoff["id"])

        assert after[:-1] == before
        assert (after[-1]["type"], after[-1]["handoff"]) == (event_type, slim(changed))
        assert changed["status"] == status
        assert after[-1]["id"] > before[-1]["id"]


def test_the_session_is_released_for_a_new_handoff_only_by_closing(
    client: TestClient, people, handoff
) -> None:
    ok(client, "claim", handoff["id"], people["dana"])
    ok(client, "release", handoff["id"], people["dana"])
    again = client.post(HANDOFFS, json=handoff_body(), headers=people["junior"])
    assert_error(again, 409, "session_already_escalated")
