"""Accounting for pipelines: result-cache hits as usage records, list prices for savings."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from agents.gateway import provider_of
from agents.pricing import price_for
from agents.runtime import UsageSink
from agents.usage import CallContext, Served, Usage, UsageRecord


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
