"""The relay's one Redis script: an org's events on the wire in ``seq`` order,
each once, whichever process or path sends them (``shared.events.relay``)."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.core import keys

#: The script's per-org "last published seq" outlives an idle org this long.
LAST_SEQ_TTL_SECONDS = 7 * 24 * 3600
#: An org's held events outlive its last hold this long. Expiry loses nothing:
#: a held event is not marked published, so the log path sends it.
HELD_TTL_SECONDS = 60

#: KEYS[1]: the org's last published seq; KEYS[2]: its held events (a hash, seq →
#: "id:json"). ARGV: channel, TTL of KEYS[1], TTL of KEYS[2], whether the caller read
#: every unpublished event of the org from the log ("1"), then seq, id, JSON triples
#: in seq order. Publishes each event that follows the last one, then any held
#: events that follow it in turn; holds an event whose predecessor is not out yet
#: (the log's word publishes it anyway). Refuses (-1) when the last is unknown,
#: unless from the log. Returns {events published, the highest seq held (0: none),
#: the org's last published seq, then the ids of the held events it released}.
PUBLISH_IN_ORDER = """
local last = tonumber(redis.call('GET', KEYS[1]))
local from_log = ARGV[4] == '1'
if last == nil and not from_log then
  return -1
end
local holding = redis.call('EXISTS', KEYS[2]) == 1
local reply = {0, 0, 0}
local function publish(seq, json)
  redis.call('PUBLISH', ARGV[1], json)
  last = seq
  reply[1] = reply[1] + 1
end
local function release_held()
  while holding do
    local held = redis.call('HGET', KEYS[2], last + 1)
    if not held then
      return
    end
    redis.call('HDEL', KEYS[2], last + 1)
    local colon = string.find(held, ':', 1, true)
    publish(last + 1, string.sub(held, colon + 1))
    reply[#reply + 1] = tonumber(string.sub(held, 1, colon - 1))
  end
end
for i = 5, #ARGV, 3 do
  local seq = tonumber(ARGV[i])
  if last ~= nil and seq <= last then
    -- out already
  elseif from_log or seq == last + 1 then
    if holding then
      redis.call('HDEL', KEYS[2], seq)
    end
    publish(seq, ARGV[i + 2])
    release_held()
  else
    redis.call('HSET', KEYS[2], seq, ARGV[i + 1] .. ':' .. ARGV[i + 2])
    redis.call('EXPIRE', KEYS[2], ARGV[3])
    holding = true
    reply[2] = seq
  end
end
if last ~= nil then
  redis.call('SET', KEYS[1], last, 'EX', ARGV[2])
  reply[3] = last
end
return reply
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """``PUBLISH_IN_ORDER``'s reply, unless it refused."""

    published: int  # put on the wire by this call
    held: int  # the highest of the caller's seqs held (0: none)
    last: int  # the org's last published seq: the caller's events up to it are out
    released: list[int]  # the ids of held events this call published

    @classmethod
    def of(cls, reply: Any) -> "Outcome | None":
        if not isinstance(reply, list):  # -1: refused
            return None
        published, held, last, *released = (int(item) for item in reply)
        return cls(published, held, last, released)

    def out(self, events: Iterable[Any]) -> list[int]:
        """The ids to mark published: of ``events`` (the caller's), those now out,
        and the held events released."""
        return [item.id for item in events if item.seq <= self.last] + self.released


def script_keys(org_id: str) -> list[str]:
    return [keys.relay_last_seq(org_id), keys.relay_held(org_id)]


def script_args(events: list[Any], *, from_log: bool) -> list[Any]:
    """``PUBLISH_IN_ORDER``'s ARGV for ``events`` (``seq``, ``id``, ``json``), in seq order."""
    args: list[Any] = [
        keys.EVENTS_CHANNEL,
        LAST_SEQ_TTL_SECONDS,
        HELD_TTL_SECONDS,
        int(from_log),
    ]
    for item in events:
        args += [item.seq, item.id, item.json]
    return args
