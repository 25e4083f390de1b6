"""Re-escalation with real processes (issue 10, done-when 1): two API replicas,
two ``escalations worker`` processes sweeping every 0.2 s, a private Redis and
the run's PostgreSQL. Under a two-level policy (the networking team for 2 s,
then all seniors), a networking handoff gets exactly one ``handoff_escalated``
for level 1 on the streams of both replicas, also when a worker is SIGKILLed
just before the deadline; a claimed one gets none; a release starts over at
level 0; with ``repeat: 1`` the levels loop once and then stop.

Assign mode (done-when 3) on the same cluster: seniors made present by streams
on either replica are assigned by the workers' sweep, one each, the busiest
skipped, nobody when nobody is present; a reassign reaches both replicas."""

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from shared.auth.tokens import issue_token
from shared.core.models import Role
from shared.core.redis_client import make_redis
from testkit.procs import Proc, api_env, base_url, poll, redis_url
from testkit.workers import start_worker
from tests.conftest import TEST_SECRET, handoff_body
from tests.e2e.conftest import StartReplica
from tests.e2e.sse import SSEClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ESCALATED = "handoff_escalated"
FIRST_LEVEL_SECONDS = 2
#: Sweeps every 0.2 s, on a busy two-core machine.
ARRIVES_WITHIN_SECONDS = 10
#: How long "no further event" is watched: many sweeps of both workers.
QUIET_SECONDS = 2.0


class Org:
    """One org's callers on the replicas: ``org.call(replica, role, method, path, json)``."""

    def __init__(self) -> None:
        self.id = f"lvl-{uuid.uuid4().hex[:8]}"
        self.tokens: dict[Role | str, str] = {role: self._token(role) for role in Role}

    def _token(self, role: Role, sub: str | None = None, name: str | None = None) -> str:
        return issue_token(
            secret=TEST_SECRET, sub=sub or f"{role.value}-1", name=name or f"{role.value} one",
            role=role, org=self.id, ttl=timedelta(hours=1),
        )  # fmt: skip

    def add_senior(self, sub: str, name: str) -> None:
        """Another senior: ``org.call(replica, sub, …)`` calls as them."""
        self.tokens[sub] = self._token(Role.senior, sub, name)

    def call(
        self, replica: Proc, role: Role | str, method: str, path: str, body: Any = None
    ) -> dict[str, Any]:
        response = httpx.request(
            method,
            base_url(replica.port) + "/api/v1" + path,
            json=body,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            timeout=10,
        )
        assert response.status_code in (200, 201), response.text
        return response.json()

    def policy(self, replica: Proc, levels: list[dict[str, Any]], repeat: int = 0) -> None:
        body = {"levels": levels, "repeat": repeat}
        self.call(replica, Role.admin, "PUT", "/escalation-policy", body)

    def networking_handoff(self, replica: Proc) -> dict[str, Any]:
        body = handoff_body(f"sess-{uuid.uuid4().hex[:8]}")
        body["snapshot"]["problem_domain"] = "networking"  # type: ignore[index]
        return self.call(replica, Role.engineer, "POST", "/handoffs", body)


def level(after_seconds: int, target: str) -> dict[str, Any]:
    return {"after_seconds": after_seconds, "target": target, "mode": "broadcast"}


def moves(stream: SSEClient, handoff_id: str) -> list[tuple[int, int]]:
    """(level, loop) of the handoff's ``handoff_escalated`` events on ``stream``."""
    return [
        (message.data["data"]["escalation"]["level"], message.data["data"]["escalation"]["loop"])
        for message in stream.events(ESCALATED)
        if message.data["handoff_id"] == handoff_id
    ]


def wait_for_moves(streams: list[SSEClient], handoff_id: str, count: int) -> None:
    for stream in streams:
        stream.wait_for(
            lambda s: len(moves(s, handoff_id)) >= count,
            timeout=ARRIVES_WITHIN_SECONDS,
            what=f"{count} escalations of {handoff_id}",
        )


@dataclass
class Cluster:
    replicas: list[Proc]
    workers: list[Proc]
    stack: ExitStack

    def streams(self, token: str) -> list[SSEClient]:
        """One ready stream on each replica, closed at teardown."""
        opened = [self.stack.enter_context(SSEClient(r.port, token=token)) for r in self.replicas]
        for stream in opened:
            stream.wait_ready()
        return opened


@pytest.fixture
def cluster(
    start_replica: StartReplica, postgres_url: str, private_redis: Proc, process_logs: Path
) -> Iterator[Cluster]:
    env = api_env(
        database_url=postgres_url, redis_url=redis_url(private_redis.port), jwt_secret=TEST_SECRET,
        assessor="heuristic", maintenance_interval_seconds="0.2",
    )  # fmt: skip
    replicas = [start_replica(env), start_replica(env)]
    with ExitStack() as stack:
        redis: Redis = make_redis(redis_url(private_redis.port))
        stack.callback(redis.close)
        workers = []
        for n in range(2):
            name = f"levels-worker-{n}-{uuid.uuid4().hex[:6]}"
            worker = start_worker(name, env=env, log_dir=process_logs, redis=redis)
            stack.callback(worker.stop)
            workers.append(worker)
        yield Cluster(replicas, workers, stack)


def test_one_move_per_level_on_both_replicas_through_a_kill_a_claim_and_a_release(
    cluster: Cluster,
) -> None:
    (a, b), first_worker = cluster.replicas, cluster.workers[0]
    org = Org()
    team = {"name": "Networking", "members": [], "domains": ["networking"]}
    org.call(a, Role.admin, "POST", "/teams", team)
    org.policy(a, [level(FIRST_LEVEL_SECONDS, "domain_team"), level(3600, "all_seniors")])
    streams = cluster.streams(org.tokens[Role.senior])

    watched = org.networking_handoff(a)
    claimed = org.networking_handoff(b)
    assert watched["escalation_target"]["team_name"] == "Networking"
    org.call(b, Role.senior, "POST", f"/handoffs/{claimed['id']}/claim")
    # SIGKILL one of the two sweepers just before the deadline: the other one moves it.
    time.sleep(max(0.0, FIRST_LEVEL_SECONDS - 0.4 - _age_seconds(watched)))
    first_worker.kill()
    wait_for_moves(streams, watched["id"], 1)
    time.sleep(QUIET_SECONDS)
    for stream in streams:
        assert moves(stream, watched["id"]) == [(1, 0)]
        assert moves(stream, claimed["id"]) == []  # claimed before its deadline
    moved = org.call(b, Role.senior, "GET", f"/handoffs/{watched['id']}")
    assert moved["escalation_level"] == 1 and moved["next_escalation_at"] is None
    assert moved["escalation_target"]["target"] == "all_seniors"

    org.call(a, Role.senior, "POST", f"/handoffs/{watched['id']}/claim")
    released = org.call(b, Role.senior, "POST", f"/handoffs/{watched['id']}/release")
    assert (released["escalation_level"], released["escalation_loop"]) == (0, 0)
    assert released["escalation_target"]["team_name"] == "Networking"
    wait_for_moves(streams, watched["id"], 2)
    time.sleep(QUIET_SECONDS)
    for stream in streams:
        assert moves(stream, watched["id"]) == [(1, 0), (1, 0)]  # started over, once again


def test_repeat_one_loops_once_and_then_stops(
    cluster: Cluster,
) -> None:
    a, b = cluster.replicas
    org = Org()
    org.policy(a, [level(1, "domain_team"), level(1, "all_seniors")], repeat=1)
    streams = cluster.streams(org.tokens[Role.senior])
    handoff = org.networking_handoff(b)
    assert handoff["escalation_target"]["target"] == "all_seniors"  # no team owns networking
    wait_for_moves(streams, handoff["id"], 3)
    poll(
        lambda: (
            org.call(a, Role.senior, "GET", f"/handoffs/{handoff['id']}")["next_escalation_at"]
            is None
        ),
        timeout=ARRIVES_WITHIN_SECONDS,
        what="the last loop to end",
    )
    time.sleep(QUIET_SECONDS)
    for stream in streams:
        assert moves(stream, handoff["id"]) == [(1, 0), (0, 1), (1, 1)]
    history = org.call(a, Role.senior, "GET", f"/handoffs/{handoff['id']}/history")["items"]
    assert [event["type"] for event in history].count(ESCALATED) == 3


SENIORS = {"u-ana": "Ana Senior", "u-ben": "Ben Senior", "u-cy": "Cy Senior"}
ASSIGNED = "handoff_assigned"


def assignees(stream: SSEClient, handoff_id: str) -> list[str]:
    return [
        message.data["data"]["assignment"]["assigned_to_id"]
        for message in stream.events(ASSIGNED)
        if message.data["handoff_id"] == handoff_id
    ]


def test_assign_mode_spreads_skips_the_busiest_and_needs_someone_present(
    cluster: Cluster,
) -> None:
    a, b = cluster.replicas
    org = Org()
    for sub, name in SENIORS.items():
        org.add_senior(sub, name)
    org.policy(a, [level(1, "all_seniors"), {**level(3600, "all_seniors"), "mode": "assign"}])
    watchers = cluster.streams(org.tokens[Role.engineer])  # engineers' streams are not presence
    present = ExitStack()
    for sub, replica in zip(SENIORS, (a, b, a), strict=True):
        present.enter_context(SSEClient(replica.port, token=org.tokens[sub])).wait_ready()
    poll(
        lambda: len(org.call(b, Role.engineer, "GET", "/presence")["items"]) == 3,
        timeout=5,
        what="three seniors present on replica b",
    )

    three = [org.networking_handoff(replica) for replica in (a, b, a)]
    for handoff in three:
        wait_for_assignee(watchers, handoff["id"])
    time.sleep(QUIET_SECONDS)
    for stream in watchers:
        assert sorted(assignees(stream, h["id"])[0] for h in three) == sorted(SENIORS)
        assert all(len(assignees(stream, h["id"])) == 1 for h in three)  # once each

    # ana holds two claims and ben one: the next goes to cy, the least busy.
    for claimer, handoff in (("u-ana", three[0]), ("u-ana", three[1]), ("u-ben", three[2])):
        org.call(b, claimer, "POST", f"/handoffs/{handoff['id']}/claim")
    fourth = org.networking_handoff(b)
    wait_for_assignee(watchers, fourth["id"])
    assert assignees(watchers[0], fourth["id"]) == ["u-cy"]

    # A reassign moves ana's claim to cy, seen on both replicas.
    body = {"to_id": "u-cy", "to_name": "Cy Senior", "note": "yours"}
    org.call(a, "u-ana", "POST", f"/handoffs/{three[0]['id']}/reassign", body)
    for stream in watchers:
        stream.wait_for(
            lambda s: any(
                m.data["handoff_id"] == three[0]["id"] for m in s.events("handoff_reassigned")
            ),
            timeout=ARRIVES_WITHIN_SECONDS,
            what="handoff_reassigned",
        )
    assert (
        org.call(b, Role.engineer, "GET", f"/handoffs/{three[0]['id']}")["claimed_by_id"] == "u-cy"
    )

    # Nobody present: the assign level broadcasts.
    present.close()
    poll(
        lambda: org.call(a, Role.engineer, "GET", "/presence")["items"] == [],
        timeout=5,
        what="nobody present",
    )
    alone = org.networking_handoff(a)
    wait_for_moves(watchers, alone["id"], 1)
    time.sleep(QUIET_SECONDS)
    assert all(assignees(stream, alone["id"]) == [] for stream in watchers)
    assert org.call(b, Role.engineer, "GET", f"/handoffs/{alone['id']}")["assigned_to_id"] is None


def wait_for_assignee(streams: list[SSEClient], handoff_id: str) -> None:
    for stream in streams:
        stream.wait_for(
            lambda s: assignees(s, handoff_id),
            timeout=ARRIVES_WITHIN_SECONDS,
            what=f"an assignee for {handoff_id}",
        )


def _age_seconds(handoff: dict[str, Any]) -> float:
    created = datetime.fromisoformat(handoff["created_at"])
    return (datetime.now(UTC) - created).total_seconds()
