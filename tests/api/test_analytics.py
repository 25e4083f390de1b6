"""``GET /api/v1/analytics/escalations`` on both databases, over rows written
straight to the tables with chosen timestamps, so every expected number can be
worked out by hand (nearest-rank percentiles: rank ceil(n * p / 100) of the
sorted durations)."""

import itertools
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from shared.core.timeutil import utcnow
from shared.events.models import Event, EventType
from shared.handoffs.models import Handoff
from shared.routing.models import Team
from tests.api.helpers import assert_error
from tests.conftest import TokenFactory

ANALYTICS = "/api/v1/analytics/escalations"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = {"since": "2026-03-01T12:00:00Z", "until": "2026-03-01T13:00:00Z"}
EMPTY_STATS = {"count": 0, "p50": None, "p90": None, "max": None}


class Seeder:
    """Writes handoffs and their events with explicit times."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seq = itertools.count(1)

    def handoff(
        self,
        created: datetime,
        *,
        status: str = "pending",
        domain: str = "kubernetes",
        org: str = "acme",
        resolved_after: float | None = None,
        events: tuple[tuple[Any, ...], ...] = (),
        first_claim: tuple[int, str | None] | None = None,
    ) -> str:
        """A handoff created at ``created`` with ``events`` as (type, seconds after
        creation[, actor id]); ``resolved_after`` sets ``resolved_at``, ``first_claim``
        the level and team id its first claim came at."""
        handoff_id = str(uuid.uuid4())
        resolved_at = (
            None if resolved_after is None else created + timedelta(seconds=resolved_after)
        )
        row = Handoff(
            id=handoff_id,
            org_id=org,
            session_id=f"sess-{handoff_id}",
            status=status,
            priority="normal",
            priority_rank=2,
            problem_domain=domain,
            created_by_id="engineer-1",
            created_by_name="Engineer One",
            created_at=created,
            updated_at=created,
            snapshot={},
            resolved_at=resolved_at,
            first_claim_level=first_claim[0] if first_claim else None,
            first_claim_team_id=first_claim[1] if first_claim else None,
        )
        with Session(self.engine) as session:
            session.add(row)
            session.flush()
            for event_type, after, *actor in events:
                at = created + timedelta(seconds=after)
                session.add(self._event(row, event_type, at, actor[0] if actor else None))
            session.commit()
        return handoff_id

    def team(self, team_id: str, name: str, org: str = "acme") -> None:
        with Session(self.engine) as session:
            session.add(Team(id=team_id, org_id=org, name=name, created_at=T0, updated_at=T0))
            session.commit()

    def _event(
        self, handoff: Handoff, event_type: EventType, at: datetime, actor_id: str | None
    ) -> Event:
        return Event(
            org_id=handoff.org_id,
            seq=next(self.seq),
            type=event_type.value,
            handoff_id=handoff.id,
            actor_id=actor_id,
            actor_name=NAMES.get(actor_id or ""),
            at=at,
            handoff={},
        )


@pytest.fixture
def seeder(engine: Engine) -> Iterator[Seeder]:
    yield Seeder(engine)


@pytest.fixture
def admin(auth: TokenFactory) -> dict[str, str]:
    return auth("admin")


def get_analytics(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = client.get(ANALYTICS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


CLAIMED, READY, BREACHED = EventType.claimed, EventType.assessment_ready, EventType.sla_breached
RESOLVED = EventType.resolved
NAMES = {"u-ana": "Ana Senior", "u-ben": "Ben Senior", "u-cy": "Cy Senior", "u-noise": "Noise"}


def seed_known_data(seed: Seeder) -> None:
    """Seven handoffs in the window (one a minute from T0), plus noise that must not count.

    claim delays (first claim):  10, 20, 30, 40, 100 s
        (h3 was claimed at 30 s, released, claimed again at 500 s: 30 counts)
        sorted, n = 5: p50 = rank ceil(2.5) = 3 → 30; p90 = rank ceil(4.5) = 5 → 100; max 100
    assessment ready (first):   2, 4, 3.5, 6 s   (h2 became ready again at 50 s: 4 counts)
        sorted 2, 3.5, 4, 6, n = 4: p50 = rank 2 → 3.5; p90 = rank ceil(3.6) = 4 → 6; max 6
    resolve: 600, 1200.5 s
        n = 2: p50 = rank 1 → 600; p90 = rank ceil(1.8) = 2 → 1200.5; max 1200.5
    domains: kubernetes h1-h3 (claims 10, 20, 30 → p50 rank 2 = 20, p90 rank 3 = 30),
             auth h6, h7 (no claims → null),
             database h4, h5 (40, 100 → p50 rank 1 = 40, p90 rank 2 = 100)
    SLA breach events: h6, h7 → 2
    first claims (level, team, who): h1 (0, -, ana), h2 (1, t-net, ben), h3 (0, t-net, ana; ben
        claimed it again), h4 (1, -, cy), h5 (2, -, ana)
    claimed at level: 0 → 2, 1 → 2, 2 → 1
    time to claim by team: all seniors h1, h4, h5 (10, 40, 100: p50 rank 2 = 40, p90 rank 3 = 100);
        t-net h2, h3 (20, 30: p50 rank 1 = 20, p90 rank 2 = 30)
    seniors: ana claimed h1, h3, h5 (3), resolved h1, first claims 10, 30, 100 → p50 30;
        ben claimed h2, h3 (2), resolved h2, first claim 20 → p50 20;
        cy claimed h4 (1), first claim 40 → p50 40
    """
    seed.team("t-net", "Networking")
    seed.team("t-noise", "Noise")
    at = [T0 + timedelta(minutes=minute) for minute in range(7)]
    seed.handoff(
        at[0],
        status="resolved",
        resolved_after=600,
        events=((READY, 2), (CLAIMED, 10, "u-ana"), (RESOLVED, 600, "u-ana")),
        first_claim=(0, None),
    )
    seed.handoff(
        at[1],
        status="resolved",
        resolved_after=1200.5,
        events=((READY, 4), (CLAIMED, 20, "u-ben"), (READY, 50), (RESOLVED, 1200.5, "u-ben")),
        first_claim=(1, "t-net"),
    )
    seed.handoff(
        at[2],
        status="claimed",
        events=((CLAIMED, 30, "u-ana"), (EventType.released, 200), (CLAIMED, 500, "u-ben")),
        first_claim=(0, "t-net"),
    )
    seed.handoff(
        at[3],
        status="claimed",
        domain="database",
        events=((CLAIMED, 40, "u-cy"),),
        first_claim=(1, None),
    )
    seed.handoff(
        at[4],
        status="claimed",
        domain="database",
        events=((CLAIMED, 100, "u-ana"),),
        first_claim=(2, None),
    )
    seed.handoff(at[5], domain="auth", events=((READY, 6), (BREACHED, 300)))
    seed.handoff(at[6], status="cancelled", domain="auth", events=((READY, 3.5), (BREACHED, 300)))
    # Noise: just before the window, exactly at its (exclusive) end, another org.
    noise = ((READY, 1), (CLAIMED, 1, "u-noise"), (BREACHED, 300))
    for created in (T0 - timedelta(seconds=1), T0 + timedelta(hours=1)):
        seed.handoff(
            created, status="claimed", domain="zzz", events=noise, first_claim=(4, "t-noise")
        )
    seed.handoff(
        at[0], status="claimed", domain="zzz", org="globex", events=noise, first_claim=(4, None)
    )


def test_known_data_gives_hand_computed_metrics(
    client: TestClient, seeder: Seeder, admin: dict[str, str]
) -> None:
    seed_known_data(seeder)
    body = get_analytics(client, admin, **WINDOW)
    assert body == {
        "since": "2026-03-01T12:00:00.000000Z",
        "until": "2026-03-01T13:00:00.000000Z",
        "total": 7,
        "by_status": {"pending": 1, "claimed": 3, "resolved": 2, "cancelled": 1},
        "time_to_claim_seconds": {"count": 5, "p50": 30.0, "p90": 100.0, "max": 100.0},
        "time_to_assessment_seconds": {"count": 4, "p50": 3.5, "p90": 6.0, "max": 6.0},
        "time_to_resolve_seconds": {"count": 2, "p50": 600.0, "p90": 1200.5, "max": 1200.5},
        "by_domain": [
            {
                "domain": "kubernetes",
                "count": 3,
                "time_to_claim_p50_seconds": 20.0,
                "time_to_claim_p90_seconds": 30.0,
            },
            {
                "domain": "auth",
                "count": 2,
                "time_to_claim_p50_seconds": None,
                "time_to_claim_p90_seconds": None,
            },
            {
                "domain": "database",
                "count": 2,
                "time_to_claim_p50_seconds": 40.0,
                "time_to_claim_p90_seconds": 100.0,
            },
        ],
        "sla_breaches": 2,
        "claimed_at_level": [
            {"level": 0, "count": 2},
            {"level": 1, "count": 2},
            {"level": 2, "count": 1},
        ],
        "time_to_claim_by_team": [
            {"team_id": None, "team_name": None, "count": 3, "p50": 40.0, "p90": 100.0},
            {"team_id": "t-net", "team_name": "Networking", "count": 2, "p50": 20.0, "p90": 30.0},
        ],
        "seniors": [
            {
                "id": "u-ana",
                "name": "Ana Senior",
                "claimed": 3,
                "resolved": 1,
                "time_to_claim_p50_seconds": 30.0,
            },
            {
                "id": "u-ben",
                "name": "Ben Senior",
                "claimed": 2,
                "resolved": 1,
                "time_to_claim_p50_seconds": 20.0,
            },
            {
                "id": "u-cy",
                "name": "Cy Senior",
                "claimed": 1,
                "resolved": 0,
                "time_to_claim_p50_seconds": 40.0,
            },
        ],
    }


def test_an_empty_window_gives_zeros_and_nulls(
    client: TestClient, seeder: Seeder, admin: dict[str, str]
) -> None:
    seed_known_data(seeder)
    body = get_analytics(client, admin, since="2020-01-01T00:00:00Z", until="2020-02-01T00:00:00Z")
    assert body["total"] == 0
    assert body["by_status"] == {"pending": 0, "claimed": 0, "resolved": 0, "cancelled": 0}
    for metric in ("claim", "assessment", "resolve"):
        assert body[f"time_to_{metric}_seconds"] == EMPTY_STATS
    assert body["by_domain"] == []
    assert body["sla_breaches"] == 0
    assert body["claimed_at_level"] == body["time_to_claim_by_team"] == body["seniors"] == []


def test_since_is_inclusive_and_until_exclusive(
    client: TestClient, seeder: Seeder, admin: dict[str, str]
) -> None:
    seeder.handoff(T0, domain="first", events=((CLAIMED, 5),))
    seeder.handoff(T0 + timedelta(minutes=1), domain="second", events=((CLAIMED, 7),))
    seeder.handoff(T0 + timedelta(minutes=2), domain="third")

    body = get_analytics(client, admin, since="2026-03-01T12:00:00Z", until="2026-03-01T12:02:00Z")
    assert body["total"] == 2
    assert [item["domain"] for item in body["by_domain"]] == ["first", "second"]
    # n = 2: p50 = rank 1 → 5; p90 = rank ceil(1.8) = 2 → 7.
    assert body["time_to_claim_seconds"] == {"count": 2, "p50": 5.0, "p90": 7.0, "max": 7.0}

    later = get_analytics(
        client, admin, since="2026-03-01T12:01:00Z", until="2026-03-01T12:01:00.001Z"
    )
    assert [item["domain"] for item in later["by_domain"]] == ["second"]


def test_naive_times_are_utc_and_offsets_are_honoured(
    client: TestClient, seeder: Seeder, admin: dict[str, str]
) -> None:
    seeder.handoff(T0)
    naive = get_analytics(client, admin, since="2026-03-01T12:00:00", until="2026-03-01T12:00:01")
    offset = get_analytics(
        client, admin, since="2026-03-01T13:00:00+01:00", until="2026-03-01T08:00:01-04:00"
    )
    assert naive["total"] == offset["total"] == 1
    assert offset["since"] == "2026-03-01T12:00:00.000000Z"
    assert offset["until"] == "2026-03-01T12:00:01.000000Z"


def test_the_default_window_is_the_last_30_days(
    client: TestClient, seeder: Seeder, admin: dict[str, str]
) -> None:
    now = utcnow()
    seeder.handoff(now - timedelta(days=1), domain="recent")
    seeder.handoff(now - timedelta(days=31), domain="old")
    body = get_analytics(client, admin)
    assert [item["domain"] for item in body["by_domain"]] == ["recent"]
    since = datetime.fromisoformat(body["since"])
    until = datetime.fromisoformat(body["until"])
    assert until - since == timedelta(days=30)
    assert abs(until - utcnow()) < timedelta(minutes=1)

    only_since = get_analytics(client, admin, since=(now - timedelta(days=40)).isoformat())
    assert only_since["total"] == 2
    only_until = get_analytics(client, admin, until=(now - timedelta(days=2)).isoformat())
    assert [item["domain"] for item in only_until["by_domain"]] == ["old"]


def test_domains_are_ordered_by_count_then_name_with_their_claim_p50(
    client: TestClient, seeder: Seeder, admin: dict[str, str]
) -> None:
    # network: claims 50, 10, 40, 20 → sorted 10, 20, 40, 50; p50 = rank 2 → 20, p90 = rank 4 → 50.
    for number, delay in enumerate((50, 10, 40, 20)):
        seeder.handoff(T0 + timedelta(seconds=number), domain="network", events=((CLAIMED, delay),))
    # "B" and "a" tie on count; code-point order puts "B" first on both databases.
    # a: one claim of 7.25 s → p50 7.25.  B: unclaimed → null.
    seeder.handoff(T0, domain="a", events=((CLAIMED, 7.25),))
    seeder.handoff(T0, domain="B")
    body = get_analytics(client, admin, **WINDOW)
    assert body["by_domain"] == [
        {
            "domain": "network",
            "count": 4,
            "time_to_claim_p50_seconds": 20.0,
            "time_to_claim_p90_seconds": 50.0,
        },
        {
            "domain": "B",
            "count": 1,
            "time_to_claim_p50_seconds": None,
            "time_to_claim_p90_seconds": None,
        },
        {
            "domain": "a",
            "count": 1,
            "time_to_claim_p50_seconds": 7.25,
            "time_to_claim_p90_seconds": 7.25,
        },
    ]


def test_another_orgs_data_is_excluded(
    client: TestClient, seeder: Seeder, auth: TokenFactory
) -> None:
    seed_known_data(seeder)
    globex = get_analytics(client, auth("admin", org="globex"), **WINDOW)
    assert globex["total"] == 1
    assert globex["by_domain"] == [
        {
            "domain": "zzz",
            "count": 1,
            "time_to_claim_p50_seconds": 1.0,
            "time_to_claim_p90_seconds": 1.0,
        }
    ]
    assert globex["sla_breaches"] == 1
    initech = get_analytics(client, auth("admin", org="initech"), **WINDOW)
    assert initech["total"] == 0


def test_sla_breaches_count_breached_handoffs_in_the_window(
    client: TestClient, seeder: Seeder, admin: dict[str, str]
) -> None:
    for minute in range(3):
        seeder.handoff(T0 + timedelta(minutes=minute), events=((BREACHED, 300),))
    seeder.handoff(T0, events=((CLAIMED, 10),))  # claimed in time: no breach
    seeder.handoff(T0 - timedelta(hours=1), events=((BREACHED, 300),))  # outside the window
    assert get_analytics(client, admin, **WINDOW)["sla_breaches"] == 3


@pytest.mark.parametrize("role", ["engineer", "senior"])
def test_only_admins_see_analytics(client: TestClient, auth: TokenFactory, role: str) -> None:
    assert_error(client.get(ANALYTICS, headers=auth(role)), 403, "insufficient_role")


def test_analytics_needs_a_token(client: TestClient) -> None:
    assert_error(client.get(ANALYTICS), 401)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"since": "yesterday"}, "validation_error"),
        ({"until": "2026-02-30T00:00:00Z"}, "validation_error"),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "invalid_window"),
        ({"until": "0001-01-01T00:00:00Z"}, "invalid_window"),
        ({"since": "9999-12-31T23:00:00-05:00"}, "invalid_window"),
    ],
    ids=["unparseable", "no-such-day", "since-after-until", "default-since-underflows", "overflow"],
)
def test_a_bad_window_is_a_422(
    client: TestClient, admin: dict[str, str], params: dict[str, str], code: str
) -> None:
    assert_error(client.get(ANALYTICS, params=params, headers=admin), 422, code)


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("0900-01-01T00:00:00Z", "0950-06-30T12:00:00Z"),
        ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"),
    ],
)
def test_windows_before_year_1000_are_echoed_as_iso_8601(
    client: TestClient, admin: dict[str, str], since: str, until: str
) -> None:
    body = get_analytics(client, admin, since=since, until=until)
    assert body["since"] == since.replace("Z", ".000000Z")
    assert body["until"] == until.replace("Z", ".000000Z")
    for echoed in (body["since"], body["until"]):
        assert datetime.fromisoformat(echoed) < datetime(1000, 1, 1, tzinfo=UTC)
    assert body["total"] == 0


def test_the_route_declares_its_errors(client: TestClient) -> None:
    operation = client.app.openapi()["paths"][ANALYTICS]["get"]  # type: ignore[attr-defined]
    assert {"200", "401", "403", "422"} <= set(operation["responses"])


def test_percentiles_match_a_nearest_rank_reference(
    client: TestClient, seeder: Seeder, admin: dict[str, str]
) -> None:
    """23 claim delays with ties and millisecond fractions, against the definition
    computed here in Python: the value at rank ceil(n * p / 100) of the sorted list."""
    delays = [(number * 37) % 11 * 10 + 0.125 for number in range(1, 24)]
    for number, delay in enumerate(delays):
        seeder.handoff(T0 + timedelta(seconds=number), events=((CLAIMED, delay),))
    ordered = sorted(delays)

    def nearest_rank(p: int) -> float:
        return ordered[math.ceil(len(ordered) * p / 100) - 1]

    stats = get_analytics(client, admin, **WINDOW)["time_to_claim_seconds"]
    assert stats == {
        "count": 23,
        "p50": nearest_rank(50),
        "p90": nearest_rank(90),
        "max": ordered[-1],
    }
