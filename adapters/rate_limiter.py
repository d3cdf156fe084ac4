"""Pacing to a provider's limits: one requests- and tokens-per-minute budget per model, in Redis.

Every worker process asks the same Redis before each model call, so the fleet as a whole stays
under the provider's limit instead of learning it from 429 storms. Each budget is a GCRA
("generic cell rate algorithm") state: one timestamp per model, lane and dimension, the
*theoretical arrival time* (TAT). A call costs 1 request and its token estimate; it may start
once the TAT is at most `burst_s` ahead of now, and starting pushes the TAT on by
cost x (60 / limit) seconds. Callers do not poll: one script run (one round trip, atomic)
books the earliest slot and says how long to wait for it, and the caller sleeps that long.

Two lanes share a model's budget. The interactive lane (personalization) has
`interactive_share` of it to itself; batch calls (catalog copy, theme builds) may use at most
the rest, so a catalog run cannot take the minute a storefront needs. An interactive call
may also take a batch slot that is free right now (the batch lane is idle).

The provider's own view corrects ours: `x-ratelimit-remaining-*` after a call (less room than
we think: the batch lane is pushed back by the difference) and a 429's `retry-after` (every
lane waits it out). A model with `after` provider failures within a window (`note_failure`) is
marked down, and `reserve` (or `down_for`) reports it until the mark expires, so a caller with a
fallback goes to it at once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.errors import GatewayError, RetryableError
from adapters.redis_conn import AsyncRedis

PREFIX = "wandstore:rl:"
# Keys outlive the last booking by this much (an idle model's state then expires by itself).
_IDLE_MS = 120_000

# KEYS: batch req, batch tok, interactive req, interactive tok (TATs, seconds), the down mark.
# ARGV: lane ('b'|'i'), tokens, T batch req, T batch tok, T inter req, T inter tok (seconds per
# unit; 0: no limit in that dimension), burst_s, max_wait_s, idle ms, '1' to answer 'down' first.
# Reply: {'ok', wait_s, lane} | {'wait', wait_s} | {'down', seconds left}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if ARGV[10] == '1' then
  local down = redis.call('PTTL', KEYS[5])
  if down > 0 then return {'down', tostring(down / 1000)} end
end
local tau = tonumber(ARGV[7])
local max_wait = tonumber(ARGV[8])
local cost = {1, tonumber(ARGV[2])}
local B = {keys = {KEYS[1], KEYS[2]}, T = {tonumber(ARGV[3]), tonumber(ARGV[4])}, name = 'b'}
local I = {keys = {KEYS[3], KEYS[4]}, T = {tonumber(ARGV[5]), tonumber(ARGV[6])}, name = 'i'}
local function look(lane)
  local wait, tats = 0, {}
  for d = 1, 2 do
    local tat = tonumber(redis.call('GET', lane.keys[d]) or '0')
    if tat < now then tat = now end
    tats[d] = tat
    if lane.T[d] > 0 and tat - tau - now > wait then wait = tat - tau - now end
  end
  return wait, tats
end
local function take(lane, tats, at)
  for d = 1, 2 do
    if lane.T[d] > 0 then
      local base = tats[d]
      if at > base then base = at end
      local tat = base + cost[d] * lane.T[d]
      redis.call('SET', lane.keys[d], string.format('%.6f', tat),
        'PX', math.floor((tat - now + tau) * 1000) + tonumber(ARGV[9]))
    end
  end
end
if ARGV[1] == 'i' then
  local wi, ti = look(I)
  if wi <= 0 then take(I, ti, now) return {'ok', '0', 'i'} end
  local wb, tb = look(B)
  if wb <= 0 then take(B, tb, now) return {'ok', '0', 'b'} end
  if wi <= max_wait then take(I, ti, now + wi) return {'ok', tostring(wi), 'i'} end
  return {'wait', tostring(wi)}
end
local wb, tb = look(B)
if wb <= max_wait then take(B, tb, now + wb) return {'ok', tostring(wb), 'b'} end
return {'wait', tostring(wb)}
"""

# The provider has less room than our lanes together think: push the batch lane back by the
# difference. KEYS: batch TAT, interactive TAT (one dimension). ARGV: remaining (units), T batch,
# T interactive, burst_s, idle ms.
_OBSERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tau = tonumber(ARGV[4])
local ours = 0
local tats = {}
for i = 1, 2 do
  local T = tonumber(ARGV[i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  tats[i] = tat
  if T > 0 then ours = ours + (now + tau - tat) / T end
end
-- `remaining` more calls may start: a budget with room r starts r + 1 (the last one into debt).
local short = ours - (tonumber(ARGV[1]) - 1)
if short < 1 or tonumber(ARGV[2]) <= 0 then return '0' end
local tat = tats[1] + short * tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.6f', tat),
  'PX', math.floor((tat - now + tau) * 1000) + tonumber(ARGV[5]))
return tostring(short)
"""

# A 429: nobody starts before `retry_after` from now. KEYS: the four TATs. ARGV: retry_after, burst_s.
_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local floor = now + tonumber(ARGV[1]) + tonumber(ARGV[2])
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < floor then
    redis.call('SET', KEYS[i], string.format('%.6f', floor),
      'PX', math.floor((floor - now) * 1000) + tonumber(ARGV[3]))
  end
end
return 1
"""


# A provider failure of `model`: count it in a window; at `after` failures mark the model down.
# KEYS: the failure count, the down mark. ARGV: after, window ms, down ms. Reply: 1 if now down.
_FAILED = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class NoSlot(RetryableError, GatewayError):
    """No slot in the model's budget within the time the caller can wait (`retry_after`: when).

    Not a `RateLimited`: the provider said nothing, and waiting again now would not help.
    """


@dataclass(frozen=True)
class Limit:
    """A model's budget per minute; None: not limited in that dimension."""

    rpm: int | None = None
    tpm: int | None = None

    def __bool__(self) -> bool:
        return bool(self.rpm or self.tpm)


@dataclass(frozen=True)
class Grant:
    """What `reserve` answered: a booked slot (`ok`, start after `wait_s`), or why not."""

    ok: bool
    wait_s: float
    lane: str = ""  # whose budget paid: "batch" or "interactive"
    down_s: float = 0.0  # > 0: the model is marked down for this long; nothing was booked


@dataclass(frozen=True)
class RateHeaders:
    """What a provider said of its limits in a response (None: not said)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float | None:
    """OpenAI's reset durations ("1s", "6m0s", "20ms", "0.5s") or plain seconds, in seconds."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _int(value: Any) -> int | None:
    try:
        return int(float(str(value)))
    except (TypeError, ValueError):
        return None


def parse_rate_headers(headers: Mapping[str, Any]) -> RateHeaders:
    """OpenAI's `x-ratelimit-*` or Anthropic's `anthropic-ratelimit-*` (litellm's `llm_provider-` prefix
    or none)."""
    plain = {str(k).lower().removeprefix("llm_provider-"): v for k, v in headers.items()}

    def pick(dim: str, what: str) -> Any:
        return plain.get(f"x-ratelimit-{what}-{dim}", plain.get(f"anthropic-ratelimit-{dim}-{what}"))

    return RateHeaders(
        limit_requests=_int(pick("requests", "limit")),
        remaining_requests=_int(pick("requests", "remaining")),
        reset_requests_s=parse_duration(pick("requests", "reset")),
        limit_tokens=_int(pick("tokens", "limit")),
        remaining_tokens=_int(pick("tokens", "remaining")),
        reset_tokens_s=parse_duration(pick("tokens", "reset")),
    )


class ModelLimiter:
    """Per-model RPM/TPM budgets shared by every process on one Redis; see the module's docstring."""

    def __init__(
        self,
        aio: AsyncRedis,
        limits: Mapping[str, Limit] | None = None,
        *,
        interactive_share: float = 0.2,
        burst_s: float = 1.0,
        max_wait_s: float = 300.0,
        prefix: str = PREFIX,
    ) -> None:
        if not 0 <= interactive_share < 1:
            raise ValueError("interactive_share must be in [0, 1)")
        self.limits = dict(limits or {})
        self.share = interactive_share
        self.burst_s = burst_s
        self.max_wait_s = max_wait_s
        self.prefix = prefix
        self._reserve = aio.register_script(_RESERVE)
        self._observe = aio.register_script(_OBSERVE)
        self._penalize = aio.register_script(_PENALIZE)
        self._failed = aio.register_script(_FAILED)
        self.aio = aio

    def limit_for(self, model: str, default: Limit | None = None) -> Limit | None:
        """The configured budget of `model` ("openai/gpt-4o-mini" or its bare name), else `default`."""
        found = self.limits.get(model) or self.limits.get(model.split("/", 1)[-1])
        if found:
            return found
        return default if default else None

    def _keys(self, model: str) -> list[str]:
        base = f"{self.prefix}{{{model}}}:"
        return [base + "b:req", base + "b:tok", base + "i:req", base + "i:tok", base + "down"]

    def _intervals(self, limit: Limit) -> list[float]:
        """Seconds per request and per token: batch lane, then interactive lane."""

        def per(unit_per_min: int | None, share: float) -> float:
            return 60.0 / (unit_per_min * share) if unit_per_min and share > 0 else 0.0

        batch = 1.0 - self.share
        return [
            per(limit.rpm, batch),
            per(limit.tpm, batch),
            per(limit.rpm, self.share),
            per(limit.tpm, self.share),
        ]

    async def reserve(
        self,
        model: str,
        tokens: int,
        limit: Limit,
        *,
        interactive: bool = False,
        max_wait_s: float | None = None,
        check_down: bool = False,
    ) -> Grant:
        """Book the earliest slot for one call of `tokens` within `max_wait_s`; nothing waits here.

        `check_down`: book nothing when the model is marked down (`Grant.down_s`).
        """
        wait_cap = self.max_wait_s if max_wait_s is None else max(0.0, max_wait_s)
        lane = "i" if interactive and self.share > 0 else "b"
        args = [lane, max(0, int(tokens)), *self._intervals(limit), self.burst_s, wait_cap, _IDLE_MS]
        args.append("1" if check_down else "0")
        reply = await self._reserve(self._keys(model), args)
        kind = _text(reply[0])
        if kind == "down":
            return Grant(ok=False, wait_s=0.0, down_s=float(_text(reply[1])))
        wait = max(0.0, float(_text(reply[1])))
        if kind == "wait":
            return Grant(ok=False, wait_s=wait)
        return Grant(ok=True, wait_s=wait, lane="interactive" if _text(reply[2]) == "i" else "batch")

    async def acquire(
        self,
        model: str,
        tokens: int,
        limit: Limit,
        *,
        interactive: bool = False,
        max_wait_s: float | None = None,
        check_down: bool = False,
    ) -> Grant:
        """`reserve`, then wait for the slot; raises `NoSlot` when none is free within `max_wait_s`."""
        grant = await self.reserve(
            model, tokens, limit, interactive=interactive, max_wait_s=max_wait_s, check_down=check_down
        )
        if grant.down_s:
            return grant
        if not grant.ok:
            cap = self.max_wait_s if max_wait_s is None else max_wait_s
            raise NoSlot(
                f"{model}: no slot in its rate budget within {cap:.1f}s (next in {grant.wait_s:.1f}s)",
                retry_after=grant.wait_s,
            )
        if grant.wait_s > 0:
            await asyncio.sleep(grant.wait_s)
        return grant

    async def observe(self, model: str, limit: Limit, seen: RateHeaders) -> None:
        """Correct the budget by what the provider says is left (only ever towards less room)."""
        keys = self._keys(model)
        tb_req, tb_tok, ti_req, ti_tok = self._intervals(limit)
        for remaining, said_limit, ours, (tb, ti), (kb, ki) in (
            (seen.remaining_requests, seen.limit_requests, limit.rpm, (tb_req, ti_req), (keys[0], keys[2])),
            (seen.remaining_tokens, seen.limit_tokens, limit.tpm, (tb_tok, ti_tok), (keys[1], keys[3])),
        ):
            if remaining is None or not ours:
                continue
            # The provider's limit is lower than ours: its own figure paces the lanes.
            if said_limit and said_limit < ours:
                scale = ours / said_limit
                tb, ti = tb * scale, ti * scale
            await self._observe([kb, ki], [remaining, tb, ti, self.burst_s, _IDLE_MS])

    async def penalize(self, model: str, retry_after_s: float) -> None:
        """A 429: every lane of `model` waits `retry_after_s` before its next start."""
        await self._penalize(self._keys(model)[:4], [max(0.0, retry_after_s), self.burst_s, _IDLE_MS])

    async def note_failure(self, model: str, *, after: int, window_s: float, down_s: float) -> bool:
        """Count a 5xx or connection error of `model`; True when it makes `after` within `window_s`,
        which marks the model down for `down_s`."""
        keys = [self._keys(model)[4] + ":failures", self._keys(model)[4]]
        args = [max(1, after), max(1, int(window_s * 1000)), max(1, int(down_s * 1000))]
        return bool(int(await self._failed(keys, args)))

    async def down_for(self, model: str) -> float:
        """Seconds left on `model`'s down mark (0: not down)."""
        left = int(await self.aio.execute("PTTL", self._keys(model)[4]))
        return left / 1000 if left > 0 else 0.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
