"""``shared.auth.people.PeopleRegistry`` on SQLite and PostgreSQL: a caller is written
once per interval (not per request), at once when their name or role changed,
per org; the remembered writes are bounded; a database error never reaches
the caller."""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, update

from shared.auth.models import KnownPerson
from shared.auth.people import PeopleRegistry, forget_person
from shared.auth.tokens import Principal
from shared.core.db import make_engine, session_scope
from shared.core.models import Role
from shared.core.timeutil import utcnow

LONG_AGO = utcnow() - timedelta(days=30)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def dana(role: Role = Role.senior, org: str = "acme", name: str = "Dana Senior") -> Principal:
    return Principal(user_id="u-dana", name=name, role=role, org_id=org)


PEOPLE = KnownPerson.__table__  # type: ignore[attr-defined]


def rows(engine: Engine) -> list[tuple[str, str, str, str]]:
    columns = (PEOPLE.c.org_id, PEOPLE.c.id, PEOPLE.c.name, PEOPLE.c.role)
    with engine.connect() as connection:
        result = connection.execute(select(*columns).order_by(PEOPLE.c.org_id, PEOPLE.c.id))
        return [(row[0], row[1], row[2], row[3]) for row in result]


def age(engine: Engine) -> None:
    """Push every ``last_seen_at`` back, so a write shows as a newer value."""
    with engine.begin() as connection:
        connection.execute(update(PEOPLE).values(last_seen_at=LONG_AGO))


def last_seen_was_written(engine: Engine) -> bool:
    recent = PEOPLE.c.last_seen_at > utcnow() - timedelta(days=1)
    with engine.connect() as connection:
        return connection.execute(select(func.count()).where(recent)).scalar_one() > 0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(engine: Engine, clock: Clock) -> PeopleRegistry:
    return PeopleRegistry(engine, write_seconds=300, clock=clock)


def test_a_caller_is_written_once_per_interval(
    engine: Engine, registry: PeopleRegistry, clock: Clock
) -> None:
    registry.seen(dana())
    assert rows(engine) == [("acme", "u-dana", "Dana Senior", "senior")]
    age(engine)
    for _ in range(50):
        registry.seen(dana())
    clock.now += 299
    registry.seen(dana())
    assert not last_seen_was_written(engine)  # 52 requests, no write
    clock.now += 1
    registry.seen(dana())
    assert last_seen_was_written(engine)


def test_a_new_role_or_name_is_written_at_once(
    engine: Engine, registry: PeopleRegistry, clock: Clock
) -> None:
    registry.seen(dana(Role.engineer))
    registry.seen(dana(Role.senior))
    assert rows(engine) == [("acme", "u-dana", "Dana Senior", "senior")]
    registry.seen(dana(Role.senior, name="Dana S."))
    assert rows(engine) == [("acme", "u-dana", "Dana S.", "senior")]
    registry.seen(dana(Role.engineer))  # back to an earlier role: written too
    assert rows(engine) == [("acme", "u-dana", "Dana Senior", "engineer")]


def test_the_same_id_in_two_orgs_is_two_people(engine: Engine, registry: PeopleRegistry) -> None:
    registry.seen(dana(Role.senior, org="acme"))
    registry.seen(dana(Role.engineer, org="globex"))
    assert rows(engine) == [
        ("acme", "u-dana", "Dana Senior", "senior"),
        ("globex", "u-dana", "Dana Senior", "engineer"),
    ]


def test_the_oldest_write_is_forgotten_past_the_bound(engine: Engine, clock: Clock) -> None:
    registry = PeopleRegistry(engine, write_seconds=300, max_remembered=2, clock=clock)
    for org in ("a", "b", "c"):  # "a" is forgotten when "c" is written
        registry.seen(dana(org=org))
    age(engine)
    registry.seen(dana(org="c"))
    assert not last_seen_was_written(engine)
    registry.seen(dana(org="a"))
    assert last_seen_was_written(engine)


def test_a_database_error_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    registry = PeopleRegistry(engine, write_seconds=300, clock=clock)
    try:
        with caplog.at_level(logging.WARNING, logger="shared.auth.people"):
            registry.seen(dana())
            registry.seen(dana())  # not remembered as written: tried again
    finally:
        engine.dispose()
    tries = [r for r in caplog.records if "could not record a person" in r.getMessage()]
    assert len(tries) == 2


def test_forget_person_deletes_one_row_of_one_org(engine: Engine, registry: PeopleRegistry) -> None:
    registry.seen(dana(org="acme"))
    registry.seen(dana(org="globex"))
    with session_scope(engine) as session:
        assert forget_person(session=session, org_id="acme", person_id="u-dana") == 1
        session.commit()
    assert rows(engine) == [("globex", "u-dana", "Dana Senior", "senior")]
