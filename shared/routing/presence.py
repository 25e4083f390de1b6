"""Who is present: a senior or admin with an open event stream on any replica,
or whose last heartbeat is younger than ``heartbeat_seconds``. All in Redis,
per org, so every replica sees the same people:

- ``keys.presence_streams(org)``: the org's seniors' and admins' open streams
  (member ``{stream id}:{user id}``), written by ``StreamRegistry`` with the
  same expiry as its per-user entries: in Redis as soon as a stream opens,
  removed when it closes, and a dead replica's entries expire with the slot TTL;
- ``keys.presence_heartbeats(org)``: user ids scored by their heartbeat's expiry;
- ``keys.presence_people(org)``: user id → ``{since}|{role}|{name}``.

Listing is one Lua script (one round trip, no SCAN): it drops expired entries,
counts each user's streams, and removes the people no longer present. ``since``
is kept while a person stays present and starts again after a gap.
Scores are Unix seconds of the writing process's clock (see ``stream_registry``).
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from shared.auth.tokens import Principal
from shared.core import keys
from shared.core.errors import ServiceUnavailable
from shared.core.models import Role, UtcTime
from shared.core.settings import Settings

#: Roles whose streams and heartbeats make them present.
PRESENT_ROLES = (Role.senior, Role.admin)

#: KEYS: the people hash, the heartbeats set, the user's ``open_streams`` set.
#: ARGV: user id, name, role, now, heartbeat expiry ("" for none), heartbeat key
#: ttl, people key ttl (s). Run before the caller adds a stream, so "present
#: before" means present without it: ``since`` is kept only then.
TOUCH = """
local now = tonumber(ARGV[4])
local beat = redis.call('ZSCORE', KEYS[2], ARGV[1])
local present = (beat and tonumber(beat) > now)
  or redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[4], '+inf') > 0
local since = ARGV[4]
local old = redis.call('HGET', KEYS[1], ARGV[1])
if present and old then
  since = string.match(old, '^([^|]*)|')
end
redis.call('HSET', KEYS[1], ARGV[1], since .. '|' .. ARGV[3] .. '|' .. ARGV[2])
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[7]) then
  redis.call('EXPIRE', KEYS[1], ARGV[7])
end
return 1
"""

#: KEYS: the streams set, the heartbeats set, the people hash. ARGV: now.
#: Returns ``[user id, "since|role|name", streams, ...]`` for the present people
#: and removes everything expired or no longer present.
LIST = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local streams = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local user = string.sub(member, 34)
  streams[user] = (streams[user] or 0) + 1
end
local present = {}
for user in pairs(streams) do present[user] = true end
for _, user in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do present[user] = true end
local out = {}
local people = redis.call('HGETALL', KEYS[3])
for i = 1, #people, 2 do
  local user = people[i]
  if present[user] then
    table.insert(out, user)
    table.insert(out, people[i + 1])
    table.insert(out, streams[user] or 0)
  else
    redis.call('HDEL', KEYS[3], user)
  end
end
return out
"""


@dataclass(frozen=True)
class Person:
    """Someone who can be present: the caller's id, name and role as the token says."""

    id: str
    name: str
    role: Role


def present_as(principal: Principal) -> Person | None:
    """The caller as a person whose streams and heartbeats count; None for engineers."""
    if principal.role not in PRESENT_ROLES:
        return None
    return Person(id=principal.user_id, name=principal.name, role=principal.role)


def stream_member(stream_id: str, user_id: str) -> str:
    """The member of ``keys.presence_streams``: a stream id is 32 hex digits,
    which ``LIST`` relies on to find the user id after it."""
    assert len(stream_id) == 32, stream_id
    return f"{stream_id}:{user_id}"


class PresentPerson(BaseModel):
    id: str
    name: str
    role: Role
    #: When the current presence began (it restarts after a gap).
    since: UtcTime
    #: Open event streams on all replicas (0: present by heartbeat only).
    streams: int


class PresenceList(BaseModel):
    items: list[PresentPerson]


def unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "Presence is unavailable (Redis did not answer); retry shortly.",
        code="presence_unavailable",
    )


class Presence:
    """Heartbeats and the org's present people; streams are written by
    ``StreamRegistry``, which calls ``touch`` for each present stream."""

    def __init__(
        self, redis: Redis, *, heartbeat_seconds: float, stream_ttl_seconds: float
    ) -> None:
        self._redis = redis
        self._heartbeat_seconds = heartbeat_seconds
        self._people_ttl = int(max(heartbeat_seconds, stream_ttl_seconds)) + 1
        self._touch = redis.register_script(TOUCH)
        self._list = redis.register_script(LIST)

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> "Presence":
        return cls(
            redis,
            heartbeat_seconds=settings.presence_heartbeat_seconds,
            stream_ttl_seconds=settings.stream_slot_ttl_seconds,
        )

    def touch(
        self,
        *,
        org_id: str,
        person: Person,
        now: float,
        heartbeat: bool = False,
        client: Redis | Pipeline | None = None,
    ) -> None:
        """Records ``person``'s name and role, and when their presence began (now,
        unless already present). Call it before adding a stream. With ``heartbeat``,
        also counts them present for ``heartbeat_seconds``. Raises ``RedisError``;
        on a pipeline, the script runs with it."""
        beat_until = str(now + self._heartbeat_seconds) if heartbeat else ""
        self._touch(
            keys=[
                keys.presence_people(org_id),
                keys.presence_heartbeats(org_id),
                keys.open_streams(org_id, person.id),
            ],
            args=[
                person.id, person.name, person.role.value, repr(now), beat_until,
                int(self._heartbeat_seconds) + 1, self._people_ttl,
            ],
            client=client,
        )  # fmt: skip

    def heartbeat(self, *, org_id: str, person: Person) -> None:
        """``person`` is present for the next ``heartbeat_seconds`` (one round trip).
        Raises ``ServiceUnavailable`` (``presence_unavailable``) when Redis does not answer."""
        try:
            self.touch(org_id=org_id, person=person, now=_now(), heartbeat=True)
        except RedisError as exc:
            raise unavailable() from exc

    def present(self, *, org_id: str) -> PresenceList:
        """The org's present people, by ``since`` then id (one round trip). Raises
        ``ServiceUnavailable`` (``presence_unavailable``) when Redis does not answer."""
        try:
            reply = self._list(
                keys=[
                    keys.presence_streams(org_id),
                    keys.presence_heartbeats(org_id),
                    keys.presence_people(org_id),
                ],
                args=[repr(_now())],
            )
        except RedisError as exc:
            raise unavailable() from exc
        people = [_person(*reply[i : i + 3]) for i in range(0, len(reply), 3)]
        return PresenceList(items=sorted(people, key=lambda p: (p.since, p.id)))


def _person(user_id: Any, record: Any, streams: Any) -> PresentPerson:
    since, role, name = _text(record).split("|", 2)
    return PresentPerson(
        id=_text(user_id),
        name=name,
        role=Role(role),
        since=datetime.fromtimestamp(float(since), UTC),
        streams=int(streams),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _now() -> float:
    return time.time()
