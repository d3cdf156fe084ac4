"""Mutable state of one dev gateway: behaviour, counters, caches and the fault queue."""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from devgateway.faults import FaultQueue
from devgateway.ratelimit import RateLimits

K = TypeVar("K")
V = TypeVar("V")
_MAX_SEEN_SYSTEMS = 50_000
_MAX_SEEN_REQUESTS = 1000
# Request headers `GET /_dev/requests` shows (never cf-aig-authorization).
_SHOWN_HEADERS = (
    "cf-aig-metadata",
    "cf-aig-event-id",
    "cf-aig-request-timeout",
    "cf-aig-collect-log-payload",
    "cf-aig-skip-cache",
    "cf-aig-cache-ttl",
    "cf-aig-cache-key",
    "traceparent",
    "tracestate",
)


class LRU(Generic[K, V]):
    """A small bounded mapping that forgets the least recently used entry."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value under `key`, or None."""
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Store `value` under `key`, evicting the oldest entry when full."""
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class CachedResponse:
    """A gateway-cached answer and when it expires (monotonic seconds)."""

    expires_at: float
    body: bytes
    headers: dict[str, str]


@dataclass
class Behaviour:
    """Persistent options: extra latency for every answer and hostile content."""

    latency_ms: int = 0
    hostile: bool = False
    payloads: tuple[str, ...] = ()  # what `hostile` answers with; empty: the built-in corpus

    def as_dict(self) -> dict[str, Any]:
        """JSON view for the admin API."""
        return {"latency_ms": self.latency_ms, "hostile": self.hostile, "payloads": len(self.payloads)}


PROVIDER_NAMES = ("openai", "anthropic")


@dataclass
class Stats:
    """Counters reported by `GET /_dev/stats`."""

    requests: int = 0
    model_calls: int = 0
    cache_hits: int = 0
    faults_served: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    rate_limited: int = 0  # 429s answered by the per-model rate limits
    by_model: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """JSON view for the admin API."""
        return {
            "requests": self.requests,
            "model_calls": self.model_calls,
            "cache_hits": self.cache_hits,
            "faults_served": self.faults_served,
            "by_model": dict(self.by_model),
            "by_status": dict(self.by_status),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "rate_limited": self.rate_limited,
        }


class GatewayState:
    """Everything one gateway app remembers between requests."""

    def __init__(self, latency_ms: int = 0, hostile: bool = False) -> None:
        self.initial = Behaviour(latency_ms=latency_ms, hostile=hostile)
        self.behaviour = Behaviour(latency_ms=latency_ms, hostile=hostile)
        self.stats = Stats()
        self.faults = FaultQueue()
        self.responses: LRU[str, CachedResponse] = LRU(20_000)
        self.answers: LRU[tuple[str, bool, tuple[str, ...], str], Any] = LRU(8_192)
        self.seen_systems: set[tuple[str, str]] = set()
        self.seen_headers: deque[dict[str, str]] = deque(maxlen=_MAX_SEEN_REQUESTS)
        # Per-model RPM/TPM (answered 429 past them) and providers marked down (answered 503).
        self.limits = RateLimits()
        self.down: set[str] = set()

    def reset(self) -> None:
        """Back to a fresh gateway: no stats, caches, faults or runtime config.

        The answer memo stays: an answer is a function of the request body and the hostile
        options (its key), so keeping it changes no reply, only what composing one costs.
        """
        self.behaviour = Behaviour(latency_ms=self.initial.latency_ms, hostile=self.initial.hostile)
        self.stats = Stats()
        self.faults.clear()
        self.responses.clear()
        self.seen_systems.clear()
        self.seen_headers.clear()
        self.limits = RateLimits()
        self.down = set()

    def record_headers(self, headers: Mapping[str, str]) -> None:
        """Remember a model call's AI Gateway and trace headers (for tests: what the client sent)."""
        self.seen_headers.append({name: headers[name] for name in _SHOWN_HEADERS if name in headers})

    def cached(self, key: str) -> CachedResponse | None:
        """A live gateway-cache entry under `key`, or None."""
        entry = self.responses.get(key)
        if entry is None:
            return None
        if entry.expires_at <= time.monotonic():
            return None
        return entry

    def remember(self, key: str, ttl: float, body: bytes, headers: dict[str, str]) -> None:
        """Store a response in the gateway cache for `ttl` seconds."""
        self.responses.put(key, CachedResponse(time.monotonic() + ttl, body, headers))

    def system_cached_tokens(self, model: str, system: str, tokens: int) -> int:
        """Tokens of `system` served from `model`'s (simulated) prompt cache; marks it seen."""
        if not system:
            return 0
        key = (model, system)
        if key in self.seen_systems:
            return tokens
        if len(self.seen_systems) >= _MAX_SEEN_SYSTEMS:
            self.seen_systems.clear()
        self.seen_systems.add(key)
        return 0
