"""Accounting: budgets before each call, every record into the ledger once, result-cache hits."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import redis
from dramatiq.middleware import CurrentMessage

from adapters import retry
from adapters.errors import BrokerUnavailable
from adapters.ledger import Entry, Ledger, Refusal, Reservation, day_of, usd_to_nano
from adapters.logs import get_logger
from adapters.redis_conn import AsyncRedis
from adapters.settings import Settings
from agents.gateway import provider_of
from agents.pricing import price_for
from agents.runtime import ExactWorstCase, UsageSink
from agents.usage import CallContext, Served, Usage, UsageRecord
from pipelines import metrics

log = get_logger("pipelines.accounting")


def list_cost_nano(records: Iterable[UsageRecord], overrides: dict[str, dict[str, float]] | None) -> int:
    """What `records` would have cost with every call fresh (a gateway HIT's tokens at full price)."""
    return sum(price_for(r.model, overrides).cost_nano(r.usage) for r in records)


async def record_result_cache_hit(
    sink: UsageSink,
    ctx: CallContext,
    *,
    prompt_ref: str,
    model: str,
    key: str,
    saved_nano: int = 0,
) -> UsageRecord:
    """Count one output served from the result cache: no tokens, cost 0, one `result_cache` hit."""
    prompt, _, version = prompt_ref.partition("@")
    record = UsageRecord(
        time=time.time(),
        store=ctx.store,
        pipeline=ctx.pipeline,
        agent=ctx.agent or prompt,
        prompt=prompt,
        prompt_version=version,
        model=model,
        provider=provider_of(model),
        usage=Usage(),
        cost_nano=0,
        served=Served.RESULT_CACHE,
        gateway_log_id=None,
        latency_ms=0.0,
        job_id=ctx.job_id,
        call_id=f"result_cache:{key}",
        saved_nano=saved_nano,
    )
    await sink.settle(None, record)
    return record


def served_from_cache(meta: dict[str, Any], *, job_id: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The `meta` of an output re-published from the result cache: free, and this job's."""
    return {
        **meta,
        "served": Served.RESULT_CACHE.value,
        "cost_usd": "0",
        "tokens": {"prompt": 0, "cached_prompt": 0, "completion": 0},
        "calls": 0,
        "job_id": job_id,
        "source_job_id": meta.get("job_id", ""),
        **extra,
    }


def attempt_of(job_id: str) -> str:
    """Which delivery-retry of `job_id` is running (Dramatiq's `retries` option), "0" outside a job.

    A job replayed from the dead-letter queue starts its retries again, so its replay count
    comes first ("r1.0"): its calls are new spend, not redeliveries of the first run's.
    """
    message = CurrentMessage.get_current_message()
    if message is None or message.message_id != job_id:
        return "0"
    retries = int(message.options.get("retries", 0) or 0)
    replays = int(message.options.get("replays", 0) or 0)
    return f"r{replays}.{retries}" if replays else str(retries)


def record_id(record: UsageRecord) -> str:
    """The ledger's idempotency key for a record.

    Job id + retry attempt + the call's deterministic id (hash of prompt, model and messages):
    a message delivered twice (a worker died before acking) repeats the same calls and is
    counted once; a retry after a failure is new spend and is counted. Outside a job (inline
    runs) every record is new.
    """
    if not record.job_id:
        return uuid.uuid4().hex
    return f"{record.job_id}:{attempt_of(record.job_id)}:{record.call_id}"


def ledger_entry(record: UsageRecord, rid: str) -> Entry:
    """A usage record as ledger counters: tokens the provider processed, cost, hits by layer."""
    u = record.usage
    fresh = record.served is Served.FRESH or record.served is Served.FALLBACK
    counts = {
        "calls": 0 if record.served is Served.RESULT_CACHE else 1,
        "prompt_tokens": u.prompt_tokens if fresh else 0,
        "cached_prompt_tokens": u.cached_prompt_tokens if fresh else 0,
        "cache_write_tokens": u.cache_write_tokens if fresh else 0,
        "completion_tokens": u.completion_tokens if fresh else 0,
        "cost_nano": record.cost_nano,
        "saved_nano": record.saved_nano,
        "gateway_cache_hits": int(record.served is Served.GATEWAY_CACHE),
        "result_cache_hits": int(record.served is Served.RESULT_CACHE),
        "invalid": int(record.outcome == "invalid"),
        "repaired": int(record.outcome == "repaired"),
        "latency_us": round(record.latency_ms * 1000),
    }
    return Entry(
        record_id=rid,
        store=record.store,
        day=day_of(record.time),
        pipeline=record.pipeline,
        agent=record.agent,
        model=record.model,
        prompt=f"{record.prompt}@{record.prompt_version}",
        counts=counts,
    )


class _Refused(Exception):
    """The ledger refused a hold: `refusal` says why."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal


class _HeldUp(_Refused):
    """Refused only for other calls' holds, which settle within a call's time: worth another try."""


class LedgerSink:
    """Budgets before each call, the ledger after it, one JSON log line and metrics per record."""

    def __init__(self, ledger: Ledger, settings: Settings, aio: AsyncRedis) -> None:
        self.ledger = ledger
        self.settings = settings
        self.daily_budget_nano = usd_to_nano(settings.daily_budget_usd)
        self.job_cap_nano = usd_to_nano(settings.job_cap_usd)
        # Long enough for the calls holding the budget to finish (or their holds to lapse).
        self.hold_wait_s = settings.gateway_timeout_s + 5
        # Holds and settlements: the ledger's scripts, on the event loop's own asyncio client.
        self._reserve = aio.register_script(ledger.reserve_script.script)
        self._settle = aio.register_script(ledger.settle_script.script)

    async def reserve(
        self, ctx: CallContext, model: str, worst_case_nano: int, exact: ExactWorstCase | None = None
    ) -> Reservation:
        """Hold the call's worst case; wait while only other calls' holds are in the way.

        Holds are worst cases and settle at the (lower) real cost within a call's time, so a
        job is refused only when what is already spent leaves no room for its call. The first
        try holds `worst_case_nano`, which may be a bound of the worst case (bytes for tokens);
        if that does not fit, `exact` works it out and the exact worst case decides.
        """
        hold = worst_case_nano
        refine = exact

        async def attempt() -> Reservation:
            nonlocal hold, refine
            got = await self._try_reserve(ctx, hold)
            if isinstance(got, Reservation):
                return got
            if refine is not None:
                hold, refine = await refine(), None
                got = await self._try_reserve(ctx, hold)
                if isinstance(got, Reservation):
                    return got
            raise (_HeldUp if got.only_held else _Refused)(got)

        try:  # 10 ms doubling to 250 ms between tries, until `hold_wait_s`
            return await retry.acall(attempt, on=_HeldUp, base_s=0.01, cap_s=0.25, give_up_s=self.hold_wait_s)
        except _Refused as refused:
            metrics.observe_budget_refusal(ctx.store, ctx.pipeline)
            error = refused.refusal.error()
            log.warning("budget_exceeded", store=ctx.store, job_id=ctx.job_id, model=model, reason=str(error))
            raise error from None

    async def _try_reserve(self, ctx: CallContext, worst_case_nano: int) -> Reservation | Refusal:
        res, keys, args = self.ledger.reserve_call(
            ctx.store,
            ctx.job_id,
            worst_case_nano,
            daily_budget_nano=self.daily_budget_nano,
            job_cap_nano=self.job_cap_nano,
        )
        try:
            reply = await self._reserve(keys, args)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"budget check failed, Redis unreachable: {exc}") from None
        return Ledger.reserve_outcome(res, reply)

    async def release(self, reservation: Any) -> None:
        if isinstance(reservation, Reservation):  # a failed call: rare, so a thread will do
            await asyncio.to_thread(self.ledger.release, reservation)

    async def settle(self, reservation: Any, record: UsageRecord) -> None:
        if record.served is Served.GATEWAY_CACHE and not record.saved_nano:
            # The HIT replayed tokens the provider did not process: their list price is the saving.
            saved = price_for(record.model, self.settings.price_overrides).cost_nano(record.usage)
            record = replace(record, saved_nano=saved)
        res = reservation if isinstance(reservation, Reservation) else None
        rid = record_id(record)
        keys, args = self.ledger.settle_call(ledger_entry(record, rid), res)
        try:
            counted = bool(int(await self._settle(keys, args)))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record usage in the ledger: {exc}") from None
        log.info("usage_recorded", record_id=rid, counted=counted, **record.as_log())
        if counted:
            metrics.observe_usage(record)
