"""Concurrent claims of one handoff in one process share one attempt.

In a claim storm each replica gets many claims of the same handoff at once.
Without this, every one of them reads the row, tries the Redis lock, polls it,
and reads the row again (or, without the lock, queues an UPDATE on the row).
With it, the first claim of a handoff in a process *leads*: it runs the claim
as before and lands with the handoff as decided. Claims that arrive meanwhile
*follow*: they wait and answer from that decision (200 to the winner claiming
again, 409 naming the winner to everyone else).

A follower only takes a decision read after it joined: the leader calls
:meth:`Seat.cover` just before each read or update, and the followers that
joined after its last one are not answered by it; the first of them leads next,
for the rest. So a 409 never names a winner from a read older than the request
it answers. A leader that fails (the database, a concurrent release) answers
no one: its first follower leads instead. Each claim's thread wakes once.

Per process only: the replicas still race each other through the Redis lock
and the conditional update, which alone decide who wins.
"""

import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from shared.handoffs.models import HandoffPublic


@dataclass(frozen=True)
class Landing:
    """A leader's answer: the handoff as decided (not pending), None when the
    org has no such handoff."""

    decided: HandoffPublic | None


@dataclass
class _Follower:
    woken: threading.Event = field(default_factory=threading.Event)
    landing: Landing | None = None  # None when woken to lead


@dataclass
class _Flight:
    covered: list[_Follower] = field(default_factory=list)  # joined before the latest read
    boarding: list[_Follower] = field(default_factory=list)  # joined since it began


class Seat:
    """One claim's place in a flight: leading (``landing`` None until it lands),
    or following with the ``landing`` that answers it."""

    def __init__(self, flights: "ClaimFlights", flight: _Flight, landing: Landing | None) -> None:
        self._flights = flights
        self._flight = flight
        self.leading = landing is None
        self.landing = landing

    def cover(self) -> None:
        """Leader: the read about to begin answers every follower joined so far."""
        with self._flights.guard:
            self._flight.covered += self._flight.boarding
            self._flight.boarding = []

    def land(self, landing: Landing) -> None:
        """Leader: the answer for the followers covered (given when the seat is left)."""
        self.landing = landing


class ClaimFlights:
    """The flights of one process, one per (org id, handoff id) being claimed."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self._flights: dict[Hashable, _Flight] = {}

    def followers(self, key: Hashable) -> int:
        """How many claims wait on ``key``'s flight now (0 when there is none)."""
        with self.guard:
            flight = self._flights.get(key)
            return 0 if flight is None else len(flight.covered) + len(flight.boarding)

    @contextmanager
    def board(self, key: Hashable) -> Iterator[Seat]:
        """A seat on ``key``'s flight: leading when there was none, else following
        (this waits until a leader answers it or hands it the lead). A leader's
        answer goes out when the block exits; an error answers no one."""
        follower: _Follower | None = None
        with self.guard:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _Flight()
            else:
                follower = _Follower()
                flight.boarding.append(follower)
        if follower is not None:
            follower.woken.wait()
            if follower.landing is not None:
                yield Seat(self, flight, follower.landing)
                return
        seat = Seat(self, flight, None)
        try:
            yield seat
        finally:
            self._hand_over(key, flight, seat.landing)

    def _hand_over(self, key: Hashable, flight: _Flight, landing: Landing | None) -> None:
        """Answer the covered followers with ``landing``; the first one left waiting leads next."""
        with self.guard:
            answered = flight.covered if landing is not None else []
            waiting = flight.boarding if landing is not None else flight.covered + flight.boarding
            flight.covered, flight.boarding = [], waiting[1:]
            next_leader = waiting[0] if waiting else None
            if next_leader is None:  # no one joins a landed flight
                del self._flights[key]
        for follower in answered:
            follower.landing = landing
            follower.woken.set()
        if next_leader is not None:
            next_leader.woken.set()
