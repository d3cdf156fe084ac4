"""Per-store slots: at most `cap` of one store's deliveries in flight across the whole fleet.

A slot is a member of `wandstore:slots:<kind>:<store>` (a sorted set) scored by when it
expires, so a worker that dies holding one frees it after `hold_ms` without anyone's help.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis

PREFIX = "wandstore:slots:"

# KEYS[1] the store's set; ARGV: token, cap, hold ms. {1} taken, or {0, ms until the first frees}.
_TAKE = """
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[2]) then
  local first = redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.max(0, tonumber(first[2]) - now)}
end
redis.call('zadd', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('pexpire', KEYS[1], ARGV[3])
return {1}
"""


@dataclass(frozen=True)
class Slot:
    """A taken slot (`token` set), or a refusal with how long until one surely frees (`wait_ms`)."""

    key: str
    token: str | None
    wait_ms: int = 0

    @property
    def taken(self) -> bool:
        return self.token is not None


class StoreSlots:
    """Counted, expiring slots per store for one kind of work (e.g. `deliveries`)."""

    def __init__(self, client: redis.Redis, kind: str) -> None:
        self.r = client
        self.kind = kind
        self._take = client.register_script(_TAKE)

    def key(self, store: str) -> str:
        return f"{PREFIX}{self.kind}:{store}"

    def take(self, store: str, cap: int, hold_ms: int) -> Slot:
        token = uuid.uuid4().hex
        key = self.key(store)
        got = self._take(keys=[key], args=[token, cap, hold_ms], client=self.r)
        if int(got[0]) == 1:
            return Slot(key, token)
        return Slot(key, None, int(got[1]))

    def give_back(self, slot: Slot) -> None:
        if slot.token is not None:
            self.r.zrem(slot.key, slot.token)

    def in_flight(self, store: str) -> int:
        return int(self.r.zcard(self.key(store)))


__all__ = ["Slot", "StoreSlots"]
