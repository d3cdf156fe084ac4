"""Fair batch lane, the Redis side: per-store pending lists, served round-robin into the `batch` queue.

Dramatiq's `batch` queue is first in, first out: a store that posts 12,000 catalog jobs puts
every other store's theme build behind them. So our own submissions of batch jobs (while a
dispatcher runs, see `pipelines/fair_dispatch.py`) do not go onto `batch` at once. Each job's
encoded message waits in its store's pending list, and moves are taken one store at a time,
round-robin, only while fewer than `window` batch messages are queued but not yet started.
A newcomer store's job is then at most one round of stores plus one window behind, however
long another store's backlog is.

Keys, under `wandstore:fair:` (one Redis, not a Cluster: the scripts build key names):
- `on`: the window, set by every running dispatcher for `PRESENCE_MS`; absent means nobody
  dispatches, and producers enqueue straight onto `batch` as before (a dispatcher starved of
  CPU for a few seconds must not turn fairness off);
- `lease`: the dispatcher that works now (short, PX); the others only keep `on` alive;
- `ring`: stores with pending jobs, each once, in serving order;
- `q:<store>:0` (single products, theme builds, webhook jobs) and `q:<store>:1` (catalog
  batches): message ids; a store's turn takes from `:0` first, so its own catalog run never
  starves its single requests;
- `bodies`: message id -> encoded Dramatiq message, until it is on `batch`;
- `waiting`: ids queued on `batch` and not started, scored by when (ms); what the window counts.
  An entry older than the stale time no longer counts (a message nobody reported started
  must never close the window for good);
- `moving` (id -> `<store> <class>`) and `moving_at` (id -> ms): taken from a pending list,
  not yet confirmed enqueued. A mover that dies between the two leaves its entries here;
  `recover` puts them back at the front of their lists once they are older than the grace.
  Nothing is lost; a mover that died after its enqueue and before its confirmation makes
  the job run twice, which Dramatiq's at-least-once delivery already asks jobs to bear.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

PREFIX = "wandstore:fair:"
URGENT, BULK = 0, 1
RECOVER_GRACE_MS = 30_000  # an enqueue takes milliseconds; a claim this old lost its mover
PRESENCE_MS = 30_000  # producers go through the fair lane while a dispatcher ran this recently

# Round-robin claim of up to `limit` ids while the window has room. ARGV[1] prefix, [2] window
# (<= 0: no limit), [3] stale ms, [4] limit. Shared by the submit and claim scripts.
_CLAIM_FN = """
local function now_ms()
  local t = redis.call('time')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function claim(p, window, stale, limit, now)
  local ring, waiting = p .. 'ring', p .. 'waiting'
  local room = limit
  if window > 0 then
    redis.call('zremrangebyscore', waiting, '-inf', now - stale)
    room = math.min(limit, window - redis.call('zcard', waiting))
  end
  local out = {}
  while room > 0 and redis.call('llen', ring) > 0 do
    local store = redis.call('lmove', ring, ring, 'LEFT', 'RIGHT')
    local q0, q1 = p .. 'q:' .. store .. ':0', p .. 'q:' .. store .. ':1'
    local kind = '0'
    local id = redis.call('lpop', q0)
    if not id then
      kind = '1'
      id = redis.call('lpop', q1)
    end
    if id then
      local body = redis.call('hget', p .. 'bodies', id)
      if body then
        redis.call('hset', p .. 'moving', id, store .. ' ' .. kind)
        redis.call('zadd', p .. 'moving_at', now + #out / 200, id)  -- 0.01 ms apart: keeps this claim's order
        redis.call('zadd', waiting, now, id)
        out[#out + 1] = id
        out[#out + 1] = body
        room = room - 1
      end
    end
    if redis.call('llen', q0) + redis.call('llen', q1) == 0 then
      redis.call('lrem', ring, 0, store)
    end
  end
  return out
end
"""

# Push one store's messages (ARGV[5] store, [6] class, then id/body pairs), then claim what the
# window allows (ARGV[2] unused). Returns false when no dispatcher runs: the caller enqueues.
_SUBMIT = (
    _CLAIM_FN
    + """
local p = ARGV[1]
local window = redis.call('get', p .. 'on')
if not window then return false end
local store, kind = ARGV[5], ARGV[6]
local q0, q1 = p .. 'q:' .. store .. ':0', p .. 'q:' .. store .. ':1'
local was = redis.call('llen', q0) + redis.call('llen', q1)
local q = q0
if kind == '1' then q = q1 end
for i = 7, #ARGV, 2 do
  redis.call('hset', p .. 'bodies', ARGV[i], ARGV[i + 1])
  redis.call('rpush', q, ARGV[i])
end
if was == 0 then redis.call('rpush', p .. 'ring', store) end
return claim(p, tonumber(window), tonumber(ARGV[3]), tonumber(ARGV[4]), now_ms())
"""
)

# A dispatcher's claim: ARGV as `claim` (the window is the caller's).
_CLAIM = (
    _CLAIM_FN
    + """
return claim(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), now_ms())
"""
)

# Moves confirmed on `batch`: forget their bodies. ARGV[1] prefix, then ids.
_DONE = """
local p = ARGV[1]
for i = 2, #ARGV do
  redis.call('hdel', p .. 'bodies', ARGV[i])
  redis.call('hdel', p .. 'moving', ARGV[i])
  redis.call('zrem', p .. 'moving_at', ARGV[i])
end
return #ARGV - 1
"""

# Claims older than ARGV[2] ms go back to the front of their lists. Returns how many.
_RECOVER = """
local p = ARGV[1]
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- + 1: a claim's entries sit up to a millisecond apart after its `now` (they keep its order)
local ids = redis.call('zrangebyscore', p .. 'moving_at', '-inf', now - tonumber(ARGV[2]) + 1)
for n = #ids, 1, -1 do  -- newest first, so the oldest ends up at the front again
  local id = ids[n]
  local where = redis.call('hget', p .. 'moving', id)
  redis.call('hdel', p .. 'moving', id)
  redis.call('zrem', p .. 'moving_at', id)
  redis.call('zrem', p .. 'waiting', id)
  if where and redis.call('hexists', p .. 'bodies', id) == 1 then
    local store, kind = string.match(where, '^(%S+) (%d)$')
    local q0, q1 = p .. 'q:' .. store .. ':0', p .. 'q:' .. store .. ':1'
    if redis.call('llen', q0) + redis.call('llen', q1) == 0 then
      redis.call('rpush', p .. 'ring', store)
    end
    redis.call('lpush', p .. 'q:' .. store .. ':' .. kind, id)
  end
end
return #ids
"""

# Announce a dispatcher (ARGV[3] window > 0: fair; else draining, no announcement) for ARGV[5]
# ms, then take or keep the lease (ARGV[2] holder, ARGV[4] ms). 1 if held.
_HOLD = """
local p = ARGV[1]
if tonumber(ARGV[3]) > 0 then redis.call('set', p .. 'on', ARGV[3], 'PX', ARGV[5]) end
local held = redis.call('get', p .. 'lease')
if held and held ~= ARGV[2] then return 0 end
redis.call('set', p .. 'lease', ARGV[2], 'PX', ARGV[4])
return 1
"""

_RELEASE = """
if redis.call('get', ARGV[1] .. 'lease') == ARGV[2] then
  return redis.call('del', ARGV[1] .. 'lease')
end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Depth:
    """What the fair lane holds: pending jobs per store, and the window's use."""

    pending: dict[str, int]
    waiting: int
    moving: int
    dispatcher: str | None  # the lease's holder
    window: int | None  # None: no dispatcher runs (producers enqueue directly)

    @property
    def total(self) -> int:
        return sum(self.pending.values())


class FairQueue:
    """The scripts over the keys in the module doc; every call is one round trip."""

    def __init__(self, client: redis.Redis, *, stale_ms: int = 60_000, prefix: str = PREFIX) -> None:
        self.r = client
        self.prefix = prefix
        self.stale_ms = stale_ms
        self._submit = client.register_script(_SUBMIT)
        self._claim = client.register_script(_CLAIM)
        self._done = client.register_script(_DONE)
        self._recover = client.register_script(_RECOVER)
        self._hold = client.register_script(_HOLD)
        self._release = client.register_script(_RELEASE)

    def submit(
        self, store: str, kind: int, messages: Iterable[tuple[str, bytes]], *, assist: int
    ) -> list[tuple[str, bytes]] | None:
        """Queue `(id, body)` pairs for `store`; None when no dispatcher runs (enqueue them yourself).

        Otherwise the moves the window allows now (up to `assist`, any store's, round-robin),
        which the caller enqueues and confirms with `done`.
        """
        flat = [x for pair in messages for x in pair]
        got = self._submit(args=[self.prefix, 0, self.stale_ms, assist, store, kind, *flat], client=self.r)
        return None if got is None else _pairs(got)

    def claim(self, window: int, limit: int) -> list[tuple[str, bytes]]:
        """Up to `limit` moves, round-robin across stores, while the window (<= 0: none) has room."""
        return _pairs(self._claim(args=[self.prefix, window, self.stale_ms, limit], client=self.r))

    def done(self, ids: list[str]) -> None:
        if ids:
            self._done(args=[self.prefix, *ids], client=self.r)

    def recover(self, grace_ms: int = RECOVER_GRACE_MS) -> int:
        """Put claims older than `grace_ms` back at the front of their stores' lists."""
        return int(self._recover(args=[self.prefix, grace_ms], client=self.r))

    def hold(self, holder: str, window: int, lease_ms: int, presence_ms: int = PRESENCE_MS) -> bool:
        """Announce a dispatcher (window > 0) and take the lease, or keep it; False while another has it."""
        args: list[str | int] = [self.prefix, holder, window, lease_ms, presence_ms]
        return bool(self._hold(args=args, client=self.r))

    def release(self, holder: str) -> None:
        self._release(args=[self.prefix, holder], client=self.r)

    def started(self, message_id: str) -> None:
        """A batch message started: its place in the window is free."""
        self.r.zrem(self.prefix + "waiting", message_id)

    def queued(self, message_id: str) -> None:
        """A batch message went onto `batch` some other way (a retry, a direct enqueue): count it."""
        # This host's clock: the score only ages the entry out after `stale_ms`.
        self.r.zadd(self.prefix + "waiting", {message_id: int(time.time() * 1000)})

    def has_pending(self) -> bool:
        return bool(self.r.llen(self.prefix + "ring"))

    def depth(self) -> Depth:
        """Pending jobs per store, the window's use, claims in flight and the lease's holder."""
        stores = [_text(s) for s in self.r.lrange(self.prefix + "ring", 0, -1)]
        pipe = self.r.pipeline(transaction=False)
        for store in stores:
            pipe.llen(f"{self.prefix}q:{store}:{URGENT}")
            pipe.llen(f"{self.prefix}q:{store}:{BULK}")
        pipe.zcard(self.prefix + "waiting")
        pipe.hlen(self.prefix + "moving")
        pipe.get(self.prefix + "lease")
        pipe.get(self.prefix + "on")
        values: list[Any] = pipe.execute()
        pending = {s: int(values[2 * i]) + int(values[2 * i + 1]) for i, s in enumerate(stores)}
        *_, waiting, moving, lease, window = values
        return Depth(
            pending,
            int(waiting),
            int(moving),
            _text(lease) if lease else None,
            int(window) if window else None,
        )


def waiting_in_lane(client: redis.Redis, message_ids: list[str], prefix: str = PREFIX) -> list[bool]:
    """For each message id: is it still in the fair lane (pending or being moved), not yet on a queue?"""
    if not message_ids:
        return []
    pipe = client.pipeline(transaction=False)
    for message_id in message_ids:
        pipe.hexists(prefix + "bodies", message_id)
    return [bool(x) for x in pipe.execute()]


def _pairs(flat: list[Any]) -> list[tuple[str, bytes]]:
    return [(_text(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]


__all__ = ["BULK", "PREFIX", "URGENT", "Depth", "FairQueue", "waiting_in_lane"]
