"""Concurrent claims in one process share one attempt (``shared.handoffs.claim_flights``):
followers answer from their leader's decision only when it was read after they
joined, and one of them leads when it was not (or the leader failed); on a real
database exactly one claim wins and every other one names the winner."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from shared.auth.tokens import Principal
from shared.core.db import session_scope
from shared.core.errors import Conflict, NotFound
from shared.core.locks import ClaimLock
from shared.core.models import Role
from shared.events.models import Event
from shared.handoffs.claim_flights import ClaimFlights, Landing
from shared.handoffs.claims import claim_handoff, release_handoff
from shared.handoffs.lifecycle import create_handoff
from shared.handoffs.models import HandoffCreate, HandoffPublic, HandoffStatus
from tests.conftest import handoff_body

KEY = ("acme", "h-1")
JUNIOR = Principal(user_id="u-1", name="Jo Junior", role=Role.engineer, org_id="acme")
SENIORS = [
    Principal(user_id=f"s-{i}", name=f"Senior {i}", role=Role.senior, org_id="acme")
    for i in range(8)
]
OTHER_REPLICAS_SENIOR = Principal(user_id="s-x", name="Senior X", role=Role.senior, org_id="acme")
WAIT_SECONDS = 10.0


def _until(condition: Callable[[], bool]) -> None:
    """Waits until ``condition`` holds (checked every millisecond, at most WAIT_SECONDS)."""
    deadline = time.monotonic() + WAIT_SECONDS
    checked = threading.Event()  # never set: its timed wait is the pause between checks
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        checked.wait(0.001)


# --- the flights alone ---------------------------------------------------------------


def _follow(flights: ClaimFlights, pool: ThreadPoolExecutor, lands: Landing) -> "Future[str]":
    """A claim boarding ``KEY``: "answered" when a leader answered it, "led" when
    it was handed the lead (then it lands ``lands``)."""

    def follow() -> str:
        with flights.board(KEY) as seat:
            if not seat.leading:
                assert seat.landing is not None
                return f"answered {seat.landing.decided.id if seat.landing.decided else None}"
            seat.cover()
            seat.land(lands)
            return "led"

    return pool.submit(follow)


def _decided(handoff_id: str) -> HandoffPublic:
    return HandoffPublic.model_construct(id=handoff_id)


def test_a_leader_answers_only_the_followers_that_joined_before_its_read() -> None:
    flights = ClaimFlights()
    with ThreadPoolExecutor(4) as pool:
        with flights.board(KEY) as leader:
            assert leader.leading
            early = [_follow(flights, pool, Landing(_decided("second"))) for _ in range(2)]
            _until(lambda: flights.followers(KEY) == 2)
            leader.cover()  # the deciding read begins
            late = [_follow(flights, pool, Landing(_decided("second"))) for _ in range(2)]
            _until(lambda: flights.followers(KEY) == 4)
            leader.land(Landing(_decided("first")))
        assert [future.result() for future in early] == ["answered first"] * 2
        # The first late one leads and answers the other from its own read.
        assert sorted(future.result() for future in late) == ["answered second", "led"]
    assert flights.followers(KEY) == 0


def test_a_failed_leader_answers_no_one_and_hands_over_the_lead() -> None:
    flights = ClaimFlights()
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(RuntimeError), flights.board(KEY) as leader:
            followers = [_follow(flights, pool, Landing(_decided("retried"))) for _ in range(2)]
            _until(lambda: flights.followers(KEY) == 2)
            leader.cover()
            raise RuntimeError("database gone")
        assert sorted(future.result() for future in followers) == ["answered retried", "led"]
    with flights.board(KEY) as next_claim:  # the key is free again
        assert next_claim.leading


def test_a_missing_handoff_answers_none() -> None:
    flights = ClaimFlights()
    with ThreadPoolExecutor(1) as pool:
        with flights.board(KEY) as leader:
            follower = _follow(flights, pool, Landing(None))
            _until(lambda: flights.followers(KEY) == 1)
            leader.cover()
            leader.land(Landing(None))
        assert follower.result() == "answered None"


# --- claims on a real database ---------------------------------------------------------


@pytest.fixture
def handoff(engine: Engine) -> HandoffPublic:
    with session_scope(engine) as session:
        created, _ = create_handoff(
            session=session,
            principal=JUNIOR,
            body=HandoffCreate.model_validate(handoff_body("sess-flights")),
            claim_sla_seconds=300,
        )
    return created


class HeldElsewhere(ClaimLock):
    """A claim lock another replica holds until the test lets it go."""

    def __init__(self, released: threading.Event) -> None:
        self._released = released

    def try_acquire(self) -> bool | None:
        return False

    def wait_until_released(self) -> None:
        assert self._released.wait(WAIT_SECONDS)

    def release(self) -> None:
        pass


def _claim(
    engine: Engine,
    principal: Principal,
    handoff_id: str,
    flights: ClaimFlights,
    lock: ClaimLock | None = None,
) -> HandoffPublic | Exception:
    with session_scope(engine) as session:
        try:
            return claim_handoff(
                session=session,
                principal=principal,
                handoff_id=handoff_id,
                claim_lock=lambda _: lock,
                flights=flights,
            )
        except (Conflict, NotFound) as exc:
            return exc


def test_claims_waiting_on_another_replica_share_its_decision(
    engine: Engine, handoff: HandoffPublic
) -> None:
    """One claim of this process waits on the lock; the others wait on that
    claim; the other replica wins; every claim here gets 409 naming it."""
    flights, released = ClaimFlights(), threading.Event()
    lock = HeldElsewhere(released)
    with ThreadPoolExecutor(len(SENIORS)) as pool:
        claims = [
            pool.submit(_claim, engine, senior, handoff.id, flights, lock) for senior in SENIORS
        ]
        _until(lambda: flights.followers((handoff.org_id, handoff.id)) == len(SENIORS) - 1)
        winner = _claim(engine, OTHER_REPLICAS_SENIOR, handoff.id, ClaimFlights())
        released.set()
        answers = [claim.result() for claim in claims]
    assert isinstance(winner, HandoffPublic) and winner.claimed_by_id == "s-x"
    for answer in answers:
        assert isinstance(answer, Conflict) and answer.code == "handoff_already_claimed"
        assert answer.extra["claimed_by_id"] == "s-x"
        assert answer.extra["claimed_by_name"] == "Senior X"
    assert _claim_events(engine, handoff.id) == ["s-x"]


def test_exactly_one_claim_wins_and_every_other_names_it(
    engine: Engine, handoff: HandoffPublic
) -> None:
    flights = ClaimFlights()
    with ThreadPoolExecutor(len(SENIORS)) as pool:
        answers = list(pool.map(lambda s: _claim(engine, s, handoff.id, flights), SENIORS))
    (winner,) = [answer for answer in answers if isinstance(answer, HandoffPublic)]
    assert winner.status == HandoffStatus.claimed
    for answer in answers:
        if answer is not winner:
            assert isinstance(answer, Conflict) and answer.code == "handoff_already_claimed"
            assert answer.extra["claimed_by_id"] == winner.claimed_by_id
    assert _claim_events(engine, handoff.id) == [winner.claimed_by_id]
    (winning_senior,) = [s for s in SENIORS if s.user_id == winner.claimed_by_id]
    repeat = _claim(engine, winning_senior, handoff.id, flights)
    assert isinstance(repeat, HandoffPublic) and repeat.claimed_at == winner.claimed_at


def test_released_then_claimed_again(engine: Engine, handoff: HandoffPublic) -> None:
    flights = ClaimFlights()
    first = _claim(engine, SENIORS[0], handoff.id, flights)
    assert isinstance(first, HandoffPublic)
    with session_scope(engine) as session:
        release_handoff(session=session, principal=SENIORS[0], handoff_id=handoff.id)
    second = _claim(engine, SENIORS[1], handoff.id, flights)
    assert isinstance(second, HandoffPublic) and second.claimed_by_id == "s-1"
    assert _claim_events(engine, handoff.id) == ["s-0", "s-1"]


def test_another_orgs_claim_is_not_found(engine: Engine, handoff: HandoffPublic) -> None:
    stranger = Principal(user_id="s-9", name="Senior 9", role=Role.senior, org_id="globex")
    answer = _claim(engine, stranger, handoff.id, ClaimFlights())
    assert isinstance(answer, NotFound)


def _claim_events(engine: Engine, handoff_id: str) -> list[str | None]:
    with session_scope(engine) as session:
        statement = (
            select(Event)
            .where(Event.handoff_id == handoff_id, Event.type == "handoff_claimed")
            .order_by(Event.id)  # type: ignore[arg-type]
        )
        return [event.actor_id for event in session.exec(statement)]
