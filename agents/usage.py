"""Usage and cost as value types that add up."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

NANO = Decimal("0.000000001")


class Served(StrEnum):
    """How an output (or a call) was served."""

    FRESH = "fresh"
    GATEWAY_CACHE = "gateway_cache"
    RESULT_CACHE = "result_cache"
    FALLBACK = "fallback"


def usd_to_nano(value: Decimal) -> int:
    """Dollars to integer nano-dollars (the ledger's unit: no float drift)."""
    return int((value / NANO).to_integral_value())


def nano_to_usd(nano: int) -> Decimal:
    return (Decimal(nano) * NANO).normalize() if nano else Decimal(0)


@dataclass(frozen=True)
class Usage:
    """Tokens of one or more model calls."""

    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.cached_prompt_tokens + other.cached_prompt_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class CallContext:
    """Who a model call is for; travels with the call into headers, logs and the ledger."""

    store: str
    pipeline: str
    job_id: str = ""
    agent: str = ""
    force_fresh: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # Whose share of a model's rate budget a call uses ("batch" or "interactive"), and until
    # when (epoch seconds) it may wait for a slot; None: the batch lane's longest wait.
    lane: str = "batch"
    deadline: float | None = None

    def for_agent(self, agent: str) -> CallContext:
        return replace(self, agent=agent)


@dataclass(frozen=True)
class UsageRecord:
    """One model call (or one cache-served output), as the ledger counts it."""

    time: float
    store: str
    pipeline: str
    agent: str
    prompt: str
    prompt_version: str
    model: str
    provider: str
    usage: Usage
    cost_nano: int
    served: Served
    gateway_log_id: str | None
    latency_ms: float
    job_id: str
    call_id: str
    outcome: str = "ok"  # ok | repaired | invalid
    # What a cache saved: the list price of the tokens a gateway HIT replayed, or of the
    # generation a result-cache hit reused. Never part of the cost.
    saved_nano: int = 0
    # The prompt's primary model when its fallback (`model`) served the call instead.
    fallback_from: str | None = None
    # AI Gateway's `cf-aig-step`: which step of its fallback chain answered (0 the first; None: not sent).
    gateway_step: int | None = None

    @property
    def cost_usd(self) -> Decimal:
        return nano_to_usd(self.cost_nano)

    def as_log(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "pipeline": self.pipeline,
            "agent": self.agent,
            "prompt": f"{self.prompt}@{self.prompt_version}",
            "model": self.model,
            "provider": self.provider,
            "prompt_tokens": self.usage.prompt_tokens,
            "cached_prompt_tokens": self.usage.cached_prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "cost_usd": str(self.cost_usd),
            "saved_usd": str(nano_to_usd(self.saved_nano)),
            "served": self.served.value,
            "gateway_log_id": self.gateway_log_id,
            "latency_ms": round(self.latency_ms, 2),
            "job_id": self.job_id,
            "call_id": self.call_id,
            "outcome": self.outcome,
            "fallback_from": self.fallback_from,
            "gateway_step": self.gateway_step,
        }
