"""The usage ledger and store budgets in Redis: integer nano-dollars, exactly-once, atomic.

Layout (one Redis, the broker's; the scripts touch keys they derive, so not Redis Cluster):

- `wandstore:ledger:{store}:{day}` hash, one per store and UTC day; fields
  `pipeline|agent|model|prompt@version|metric` (see `METRICS`), integer counters.
- `wandstore:ledger:days` sorted set of `{day}|{store}` scored `YYYYMMDD`: reports scan a
  date range without KEYS.
- `wandstore:ledger:seen:{record_id}` marks a counted record (TTL 8 days): a redelivered
  message's records are counted once.
- `wandstore:budget:day:{store}:{day}` hash `spent`, `reserved`; `wandstore:budget:job:{job}`
  the same for one job; `wandstore:budget:res:{store}` sorted set of reservations in flight
  (`id|nano|day|job`, scored by lease expiry, so a crashed worker's hold lapses);
  `wandstore:budget:override` hash store -> daily budget in nano-dollars.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import redis

from adapters.errors import BrokerUnavailable, BudgetExceeded
from adapters.pipeline_names import canonical

NANO = Decimal("0.000000001")
LEDGER = "wandstore:ledger:"
DAYS = "wandstore:ledger:days"
SEEN = "wandstore:ledger:seen:"
BUDGET_DAY = "wandstore:budget:day:"
BUDGET_JOB = "wandstore:budget:job:"
RESERVATIONS = "wandstore:budget:res:"
OVERRIDES = "wandstore:budget:override"
NO_JOB = BUDGET_JOB + "-"

SEEN_TTL_S = 8 * 24 * 3600
BUDGET_TTL_S = 8 * 24 * 3600
RESERVATION_LEASE_MS = 10 * 60 * 1000

# Counters kept per (store, day, pipeline, agent, model, prompt version). Tokens are what the
# provider processed (a gateway HIT replays an answer: its tokens count as saved, not used).
METRICS = (
    "calls",
    "prompt_tokens",
    "cached_prompt_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "cost_nano",
    "saved_nano",
    "gateway_cache_hits",
    "result_cache_hits",
    "invalid",
    "repaired",
    "latency_us",
)

# Expired holds first, then: spent + reserved + worst <= budget, and the same for the job.
_RESERVE = """
local function n(x) return string.format('%.0f', x) end
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('zrangebyscore', KEYS[1], '-inf', now)
for _, m in ipairs(expired) do
  local amount, day, job = string.match(m, '^[^|]*|(%d+)|([^|]*)|(.*)$')
  redis.call('hincrby', ARGV[11] .. ARGV[1] .. ':' .. day, 'reserved', '-' .. amount)
  if job ~= '' then redis.call('hincrby', ARGV[12] .. job, 'reserved', '-' .. amount) end
  redis.call('zrem', KEYS[1], m)
end
local worst = tonumber(ARGV[3])
local budget = tonumber(redis.call('hget', KEYS[4], ARGV[1]) or ARGV[4])
local spent = tonumber(redis.call('hget', KEYS[2], 'spent') or '0')
local reserved = tonumber(redis.call('hget', KEYS[2], 'reserved') or '0')
if spent + reserved + worst > budget then
  return {0, 'day', n(budget), n(spent), n(reserved)}
end
if ARGV[6] == '1' then
  local cap = tonumber(ARGV[5])
  local jspent = tonumber(redis.call('hget', KEYS[3], 'spent') or '0')
  local jreserved = tonumber(redis.call('hget', KEYS[3], 'reserved') or '0')
  if jspent + jreserved + worst > cap then
    return {0, 'job', n(cap), n(jspent), n(jreserved)}
  end
  redis.call('hincrby', KEYS[3], 'reserved', ARGV[3])
  redis.call('expire', KEYS[3], ARGV[9])
end
redis.call('hincrby', KEYS[2], 'reserved', ARGV[3])
redis.call('expire', KEYS[2], ARGV[9])
redis.call('zadd', KEYS[1], now + tonumber(ARGV[8]), ARGV[7])
return {1, 'ok', n(budget), n(spent), n(reserved)}
"""

# Give back a hold if it is still held (its lease may have lapsed and been purged).
_UNRESERVE = """
local function unreserve(zset, member, day_prefix, job_prefix, store)
  if member == '' or redis.call('zrem', zset, member) == 0 then return end
  local amount, day, job = string.match(member, '^[^|]*|(%d+)|([^|]*)|(.*)$')
  redis.call('hincrby', day_prefix .. store .. ':' .. day, 'reserved', '-' .. amount)
  if job ~= '' then redis.call('hincrby', job_prefix .. job, 'reserved', '-' .. amount) end
end
"""

_RELEASE = (
    _UNRESERVE
    + """
unreserve(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
"""
)

# Settle = release the hold, then (once per record id) count the record and charge its cost.
_SETTLE = (
    _UNRESERVE
    + """
unreserve(KEYS[4], ARGV[1], ARGV[11], ARGV[12], ARGV[2])
if not redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[5]) then return 0 end
for i = 13, #ARGV, 2 do
  if ARGV[i + 1] ~= '0' then redis.call('hincrby', KEYS[2], ARGV[10] .. ARGV[i], ARGV[i + 1]) end
end
redis.call('zadd', KEYS[3], ARGV[7], ARGV[6])
if ARGV[4] ~= '0' then
  redis.call('hincrby', KEYS[5], 'spent', ARGV[4])
  redis.call('expire', KEYS[5], ARGV[8])
  if ARGV[3] == '1' then
    redis.call('hincrby', KEYS[6], 'spent', ARGV[4])
    redis.call('expire', KEYS[6], ARGV[8])
  end
end
return 1
"""
)


def usd(nano: int) -> str:
    """Nano-dollars as a plain decimal string of dollars ("0.0003183"), no float."""
    if not nano:
        return "0"
    return format((Decimal(nano) * NANO).normalize(), "f")


def usd_to_nano(value: Decimal | str | float) -> int:
    """Dollars (a Decimal, a string, or a float's literal) to integer nano-dollars."""
    return int((Decimal(str(value)) / NANO).to_integral_value())


def day_of(ts: float) -> str:
    """The UTC day of a Unix time, as the ledger keys it."""
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Reservation:
    """A hold on a store's daily budget (and its job's cap) while one call is in flight."""

    store: str
    day: str
    job_id: str
    nano: int
    id: str

    @property
    def member(self) -> str:
        return f"{self.id}|{self.nano}|{self.day}|{self.job_id}"


@dataclass(frozen=True)
class Entry:
    """One usage record as the ledger counts it (counters by name, see `METRICS`)."""

    record_id: str
    store: str
    day: str
    pipeline: str
    agent: str
    model: str
    prompt: str  # "name@version"
    counts: Mapping[str, int]

    @property
    def cost_nano(self) -> int:
        return int(self.counts.get("cost_nano", 0))


@dataclass(frozen=True)
class Cell:
    """One counter as stored: where it was counted, which metric, and its value."""

    store: str
    day: str
    pipeline: str
    agent: str
    model: str
    prompt: str
    metric: str
    value: int


@dataclass(frozen=True)
class BudgetState:
    """A store's daily budget today and what is spent and held against it."""

    store: str
    day: str
    budget_nano: int
    overridden: bool
    spent_nano: int
    reserved_nano: int

    @property
    def remaining_nano(self) -> int:
        return max(self.budget_nano - self.spent_nano - self.reserved_nano, 0)


class Ledger:
    """Usage counters and budgets for every store; safe to share across processes."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self.reserve_script = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)
        self.settle_script = client.register_script(_SETTLE)

    # --- budgets ----------------------------------------------------------------------

    def reserve(
        self, store: str, job_id: str, worst_nano: int, *, daily_budget_nano: int, job_cap_nano: int
    ) -> Reservation:
        """Hold `worst_nano` for one call, or raise `BudgetExceeded` naming the budget and the spend."""
        got = self.try_reserve(
            store, job_id, worst_nano, daily_budget_nano=daily_budget_nano, job_cap_nano=job_cap_nano
        )
        if isinstance(got, Refusal):
            raise got.error()
        return got

    def try_reserve(
        self, store: str, job_id: str, worst_nano: int, *, daily_budget_nano: int, job_cap_nano: int
    ) -> Reservation | Refusal:
        """Hold `worst_nano` for one call if spent + held + it fits the day's budget and the job's cap."""
        res, keys, args = self.reserve_call(
            store, job_id, worst_nano, daily_budget_nano=daily_budget_nano, job_cap_nano=job_cap_nano
        )
        try:
            reply = self.reserve_script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"budget check failed, Redis unreachable: {exc}") from None
        return self.reserve_outcome(res, reply)

    def reserve_call(
        self, store: str, job_id: str, worst_nano: int, *, daily_budget_nano: int, job_cap_nano: int
    ) -> tuple[Reservation, list[str], list[str | int]]:
        """The hold `try_reserve` asks for, and `reserve_script`'s keys and args (to send in a batch)."""
        res = Reservation(store, today(), job_id, max(int(worst_nano), 0), uuid.uuid4().hex[:16])
        keys = [RESERVATIONS + store, f"{BUDGET_DAY}{store}:{res.day}", self._job_key(job_id), OVERRIDES]
        args: list[str | int] = [
            store,
            res.day,
            res.nano,
            daily_budget_nano,
            job_cap_nano,
            "1" if job_id else "0",
            res.member,
            RESERVATION_LEASE_MS,
            BUDGET_TTL_S,
            "",
            BUDGET_DAY,
            BUDGET_JOB,
        ]
        return res, keys, args

    @staticmethod
    def reserve_outcome(res: Reservation, reply: list[Any]) -> Reservation | Refusal:
        """`res` if `reserve_script` granted it, else the refusal it explained."""
        ok, scope, limit, spent, held = reply
        if int(ok):
            return res
        return Refusal(
            _text(scope),
            res.store,
            res.job_id,
            int(_text(limit)),
            int(_text(spent)),
            int(_text(held)),
            res.nano,
        )

    def release(self, res: Reservation) -> None:
        """Give a hold back (the call failed and cost nothing)."""
        try:
            self._release(
                keys=[RESERVATIONS + res.store], args=[res.member, BUDGET_DAY, BUDGET_JOB, res.store]
            )
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not release a budget hold: {exc}") from None

    def set_budget(self, store: str, nano: int) -> None:
        """Override the store's daily budget."""
        try:
            self.r.hset(OVERRIDES, store, int(nano))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not set the budget: {exc}") from None

    def clear_budget(self, store: str) -> bool:
        """Drop the store's override (back to DAILY_BUDGET_USD); True if there was one."""
        try:
            return bool(self.r.hdel(OVERRIDES, store))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not clear the budget: {exc}") from None

    def budget(self, store: str, default_nano: int, day: str | None = None) -> BudgetState:
        """The store's budget for `day` (default today) and what is spent and held."""
        day = day or today()
        try:
            override = self.r.hget(OVERRIDES, store)
            spent, held = self.r.hmget(f"{BUDGET_DAY}{store}:{day}", ["spent", "reserved"])
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the budget: {exc}") from None
        return BudgetState(
            store=store,
            day=day,
            budget_nano=int(override) if override is not None else default_nano,
            overridden=override is not None,
            spent_nano=int(spent or 0),
            reserved_nano=int(held or 0),
        )

    def job_spent(self, job_id: str) -> int:
        """Nano-dollars charged to one job so far."""
        try:
            return int(self.r.hget(self._job_key(job_id), "spent") or 0)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the job's spend: {exc}") from None

    # --- counting ---------------------------------------------------------------------

    def settle(self, entry: Entry, res: Reservation | None = None) -> bool:
        """Release `res`, then count `entry` once; False if its record id was already counted."""
        keys, args = self.settle_call(entry, res)
        try:
            return bool(int(self.settle_script(keys=keys, args=args)))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record usage in the ledger: {exc}") from None

    def settle_call(self, entry: Entry, res: Reservation | None = None) -> tuple[list[str], list[str | int]]:
        """`settle_script`'s keys and args for `settle(entry, res)` (to send in a batch)."""
        budget_day = res.day if res is not None else entry.day
        keys = [
            SEEN + entry.record_id,
            f"{LEDGER}{entry.store}:{entry.day}",
            DAYS,
            RESERVATIONS + entry.store,
            f"{BUDGET_DAY}{entry.store}:{budget_day}",
            self._job_key(res.job_id if res is not None else ""),
        ]
        prefix = f"{entry.pipeline}|{entry.agent}|{entry.model}|{entry.prompt}|"
        args: list[str | int] = [
            res.member if res is not None else "",
            entry.store,
            "1" if res is not None and res.job_id else "0",
            entry.cost_nano,
            SEEN_TTL_S,
            f"{entry.day}|{entry.store}",
            int(entry.day.replace("-", "")),
            BUDGET_TTL_S,
            "",
            prefix,
            BUDGET_DAY,
            BUDGET_JOB,
        ]
        for metric in METRICS:
            args += [metric, int(entry.counts.get(metric, 0))]
        return keys, args

    def scan(
        self, since: date | None = None, until: date | None = None, store: str | None = None
    ) -> Iterator[Cell]:
        """Every counter of the days in [since, until] (all days when None), optionally one store."""
        low = int(since.strftime("%Y%m%d")) if since else "-inf"
        high = int(until.strftime("%Y%m%d")) if until else "+inf"
        try:
            members = [_text(m) for m in self.r.zrangebyscore(DAYS, low, high)]  # type: ignore[arg-type]
            for member in members:
                day, _, owner = member.partition("|")
                if store is not None and owner != store:
                    continue
                for field, value in self.r.hgetall(f"{LEDGER}{owner}:{day}").items():
                    pipeline, agent, model, prompt, metric = _text(field).split("|")
                    # canonical: counters written before the names were one say `personalize`
                    yield Cell(owner, day, canonical(pipeline), agent, model, prompt, metric, int(value))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the ledger: {exc}") from None

    @staticmethod
    def _job_key(job_id: str) -> str:
        return BUDGET_JOB + job_id if job_id else NO_JOB


@dataclass(frozen=True)
class Refusal:
    """Why a hold was refused: which limit (`day` or `job`), and what is spent and held against it."""

    scope: str
    store: str
    job_id: str
    limit_nano: int
    spent_nano: int
    held_nano: int
    worst_nano: int

    @property
    def only_held(self) -> bool:
        """True when the call fits what is spent; only holds of calls in flight are in its way."""
        return self.spent_nano + self.worst_nano <= self.limit_nano

    def error(self) -> BudgetExceeded:
        """The error for the job, naming the store, the budget and what was spent."""
        held = self.held_nano
        in_flight = f" (+${usd(held)} held by calls in flight)" if held else ""
        spent, worst, limit = usd(self.spent_nano), usd(self.worst_nano), usd(self.limit_nano)
        if self.scope == "job":
            return BudgetExceeded(
                f"job {self.job_id} of store {self.store} would cross its cap of ${limit} per job: "
                f"it has spent ${spent}{in_flight} and the next call may cost up to ${worst} "
                "(raise JOB_CAP_USD to allow bigger jobs)"
            )
        return BudgetExceeded(
            f"store {self.store} would cross its daily budget of ${limit}: spent ${spent} today"
            f"{in_flight} and the next call may cost up to ${worst} "
            f"(raise it with `wandstore-agents budget set {self.store} USD`)"
        )
