"""The result cache: a generation already made for identical inputs is reused, not re-bought.

Any pipeline can use it; an entry is one JSON object (for product copy, the published
body and its `meta`) stored in Redis under `wandstore:rc:{store}:{pipeline}:{key}` for
`RESULT_CACHE_TTL_S`. Usage::

    key = cache_key(pipeline, prompt.ref, prompt.meta.model, variables)  # or any stable parts
    got = await svc.results.get_or_compute(pipeline, key, compute, store=store, fresh=opts.force_fresh)
    got.value  # what `compute()` returned (now, or in an earlier job / another process)
    got.hit    # True: served from the cache, no model was called for this request

- **Entries are the store's own.** Every entry and every lock is under its store (a required
  argument), so two merchants with identical catalogs never share a generation, a job id or
  a timing, and no store can learn from a hit that another generated the same thing.
- **The key decides sharing** within a store. Put into it everything that changes the output (prompt
  version, model, normalized input) and nothing that doesn't: two requests with one key
  get one generation (e.g. a cohort-shared personalization, a theme brief).
- **Single flight.** Concurrent requests for one key make one `compute()` call: in a
  process, callers await the same future; across processes, a Redis lock
  (`SET NX PX`, renewed while `compute` runs) elects one computer and the rest poll for its
  value. If the computer fails, a waiter takes over (each job gets its own error).
- **`fresh=True`** computes without reading (or joining) and overwrites the entry.
- **Values** must be JSON-serializable dicts; keep large artefacts in the object store
  and cache their keys. The caller does the accounting of a hit (see
  `pipelines.accounting.record_result_cache_hit`): the cache only stores and elects.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis

from adapters import retry
from adapters.errors import BrokerUnavailable, InvalidInput
from adapters.logs import get_logger
from adapters.redis_conn import AsyncRedis
from pipelines.publish import input_hash

log = get_logger("pipelines.result_cache")
PREFIX = "wandstore:rc:"
LOCK_PREFIX = "wandstore:rc-lock:"

Compute = Callable[[], Awaitable[dict[str, Any]]]
_STORE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

# Compare-and-delete / compare-and-extend: only the holder's token may touch its lock.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)
# Take the lock when it is free, or when an earlier delivery of the same job holds it (the job
# was killed, or failed while Redis was away, before releasing it): that lease would otherwise
# stall the job's own retry for up to `lock_ms`.
# One round trip for a look-up: the value when there is one, else the lock when it is free
# ({value, 0} or {false, 1 taken / 0 held by another}). Atomic, so nobody stores the value
# between our read and our lock.
_GET_OR_ACQUIRE = """
local value = redis.call('get', KEYS[2])
if value then return {value, 0} end
local held = redis.call('get', KEYS[1])
if held and not (ARGV[3] ~= '' and string.sub(held, 1, string.len(ARGV[3])) == ARGV[3]) then
  return {false, 0}
end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {false, 1}
"""
# Store the value and release our lock (if still ours) in one round trip.
_PUT_AND_RELEASE = """
redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
return 1
"""


def scoped(store: str, pipeline: str, key: str) -> str:
    """`{store}:{pipeline}:{key}`: where an entry (under `PREFIX`) and its lock (under `LOCK_PREFIX`) live."""
    if not _STORE.match(store):
        raise InvalidInput(f"result cache: store {store!r} must be a store slug ({_STORE.pattern})")
    return f"{store}:{pipeline}:{key}"


def cache_key(*parts: Any) -> str:
    """A stable key from whatever decides the output (same canonical hash as `meta.input_hash`)."""
    return input_hash(*parts)


class _Locked(Exception):
    """Another process holds the lock: its value is not there yet."""


@dataclass(frozen=True)
class Cached:
    """A value from `get_or_compute` and whether it came from the cache."""

    value: dict[str, Any]
    hit: bool


class ResultCache:
    """Redis-backed results with single flight; one per process, shared by every pipeline.

    `fresh_only=True` (`CACHES_ENABLED=false`: benchmarks' "caches off" run, debugging a suspected
    stale answer) answers nothing from the cache, as `fresh=True` does for one request; what it
    computes is still written, so turning the caches back on finds the freshest entries.
    """

    def __init__(
        self,
        client: redis.Redis,
        aio: AsyncRedis,
        *,
        ttl_s: int,
        lock_ms: int = 30_000,
        wait_s: float = 300.0,
        fresh_only: bool = False,
    ) -> None:
        self.r = client
        self.fresh_only = fresh_only
        self.ttl_s = ttl_s
        self.lock_ms = lock_ms
        self.wait_s = wait_s
        self._inflight: dict[tuple[int, str], asyncio.Future[dict[str, Any]]] = {}
        # Coroutines use the event loop's own asyncio client: never a blocking round trip on the loop,
        # and the calls of one loop iteration go out as one pipeline.
        self.aio = aio
        self._release = aio.register_script(_RELEASE)
        self._renew = aio.register_script(_RENEW)
        self._take = aio.register_script(_GET_OR_ACQUIRE)
        self._store = aio.register_script(_PUT_AND_RELEASE)

    # --- plain access -----------------------------------------------------------

    async def get(self, pipeline: str, key: str, *, store: str) -> dict[str, Any] | None:
        """`store`'s cached value, or None."""
        if self.fresh_only:
            return None
        try:
            raw = await self.aio.execute("GET", PREFIX + scoped(store, pipeline, key))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"result cache unreachable: {exc}") from None
        return json.loads(raw) if raw else None

    async def put(
        self, pipeline: str, key: str, value: dict[str, Any], ttl_s: int | None = None, *, store: str
    ) -> None:
        """Store `value` for `store` (overwriting) for `ttl_s` seconds (default: the cache's TTL)."""
        entry = PREFIX + scoped(store, pipeline, key)
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        try:
            await self.aio.execute("SET", entry, body, "EX", ttl_s or self.ttl_s)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"result cache unreachable: {exc}") from None

    def delete(self, pipeline: str, key: str, *, store: str) -> None:
        """Forget one of `store`'s entries."""
        try:
            self.r.delete(PREFIX + scoped(store, pipeline, key))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"result cache unreachable: {exc}") from None

    # --- single flight --------------------------------------------------------------

    async def get_or_compute(
        self,
        pipeline: str,
        key: str,
        compute: Compute,
        *,
        store: str,
        fresh: bool = False,
        ttl_s: int | None = None,
    ) -> Cached:
        """`store`'s value for (`pipeline`, `key`), or `compute()`'s, computed once however many ask."""
        where = scoped(store, pipeline, key)
        if fresh or self.fresh_only:
            value = await compute()
            await self.put(pipeline, key, value, ttl_s, store=store)
            return Cached(value, hit=False)
        loop_key = (id(asyncio.get_running_loop()), where)
        while True:
            flight = self._inflight.get(loop_key)
            if flight is None:
                break
            try:
                # Shielded: one waiter cancelled must not cancel the computation for the rest.
                return Cached(await asyncio.shield(flight), hit=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                continue  # the computer failed: the next one in line takes over
        flight = asyncio.get_running_loop().create_future()
        self._inflight[loop_key] = flight
        try:
            got = await self._across_processes(where, compute, ttl_s)
        except BaseException as exc:
            if isinstance(exc, Exception):
                flight.set_exception(exc)
                flight.exception()  # retrieved: no "never retrieved" warning when nobody waits
            else:
                flight.cancel()
            raise
        else:
            flight.set_result(got.value)
            return got
        finally:
            self._inflight.pop(loop_key, None)

    async def _across_processes(self, where: str, compute: Compute, ttl_s: int | None) -> Cached:
        entry = PREFIX + where
        lock = LOCK_PREFIX + where
        owner = _job_id()
        token = f"{owner}|{uuid.uuid4().hex}"

        async def value_or_lock() -> dict[str, Any] | None:  # None: the lock is ours
            value, taken = await self._get_or_acquire(entry, lock, token, f"{owner}|" if owner else "")
            if value is None and not taken:
                raise _Locked  # another process computes it: poll for its value, 10 ms growing to 200 ms
            return value

        try:
            value = await retry.acall(
                value_or_lock, on=_Locked, base_s=0.01, cap_s=0.2, give_up_s=self.wait_s
            )
        except _Locked:
            log.warning("result_cache_wait_timeout", entry=where, wait_s=self.wait_s)
            value = await compute()
            body = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            await self._store([lock, entry], ["", body, ttl_s or self.ttl_s])
            return Cached(value, hit=False)
        if value is not None:
            return Cached(value, hit=True)
        renewer = asyncio.ensure_future(self._keep(lock, token))
        try:
            value = await compute()
        except BaseException:
            await self._unlock(lock, token)
            raise
        finally:
            renewer.cancel()
        await self._put_and_release(entry, lock, token, value, ttl_s)
        return Cached(value, hit=False)

    async def _get_or_acquire(
        self, entry: str, lock: str, token: str, owner_prefix: str
    ) -> tuple[dict[str, Any] | None, bool]:
        try:
            args = [token, self.lock_ms, owner_prefix]
            raw, taken = await self._take([lock, entry], args)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"result cache unreachable: {exc}") from None
        return (json.loads(raw) if raw else None), bool(taken)

    async def _put_and_release(
        self, entry: str, lock: str, token: str, value: dict[str, Any], ttl_s: int | None
    ) -> None:
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        try:
            await self._store([lock, entry], [token, body, ttl_s or self.ttl_s])
        except redis.RedisError as exc:
            # Not stored: release what we can (the lease expires by itself otherwise).
            await self._unlock(lock, token)
            raise BrokerUnavailable(f"result cache unreachable: {exc}") from None

    async def _unlock(self, lock: str, token: str) -> None:
        try:
            await self._release([lock], [token])
        except redis.RedisError as exc:
            # The lease expires by itself; a waiter then takes over.
            log.warning("result_cache_unlock_failed", lock=lock, error=str(exc))

    async def _keep(self, lock: str, token: str) -> None:
        """Extend the lease while `compute` runs (theme builds take minutes)."""
        while True:
            await asyncio.sleep(self.lock_ms / 3000)
            try:
                await self._renew([lock], [token, self.lock_ms])
            except redis.RedisError as exc:
                log.warning("result_cache_renew_failed", lock=lock, error=str(exc))


def _job_id() -> str:
    """The Dramatiq message being processed (a job keeps its id across retries), or ""."""
    from dramatiq.middleware import CurrentMessage

    message = CurrentMessage.get_current_message()
    return message.message_id if message is not None else ""
