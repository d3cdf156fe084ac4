"""Provider rate limits, as a provider enforces them: requests and tokens per minute per model.

Each model has two token buckets (requests, tokens) refilled continuously at limit/60 per
second and holding `burst_s` seconds of it. A request is let through while its buckets are not
in debt, and then charged (1 request; prompt tokens plus `max_tokens`, as OpenAI counts them
at request time); otherwise it is answered 429 with `retry-after` and the `x-ratelimit-*`
headers. Every answer of a limited model carries those headers, as OpenAI's do.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from devgateway.tokens import count_model_tokens


@dataclass
class _Bucket:
    per_min: int
    burst_s: float
    tat: float = 0.0  # when the bucket would be full again (monotonic seconds)

    @property
    def interval(self) -> float:
        return 60.0 / self.per_min

    def wait(self, now: float) -> float:
        """Seconds until a request may start (0: now)."""
        return max(0.0, max(self.tat, now) - self.burst_s - now)

    def charge(self, now: float, cost: float) -> None:
        self.tat = max(self.tat, now) + cost * self.interval

    def remaining(self, now: float) -> int:
        return max(0, math.floor((now + self.burst_s - max(self.tat, now)) / self.interval))

    def reset_s(self, now: float) -> float:
        return max(0.0, self.tat - now)


@dataclass
class ModelLimits:
    """One model's buckets."""

    requests: _Bucket | None = None
    tokens: _Bucket | None = None


def _duration(seconds: float) -> str:
    """OpenAI's reset format: "0.25s", "1m3s"."""
    if seconds >= 60:
        minutes = int(seconds // 60)
        return f"{minutes}m{seconds - minutes * 60:.0f}s"
    return f"{seconds:.3f}s"


def request_tokens(body: dict[str, Any], model: str) -> int:
    """Tokens a request is charged: its messages' text plus the completion it may take."""
    total = 0
    system = body.get("system")
    if isinstance(system, str):
        total += count_model_tokens(system, model)
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += count_model_tokens(content, model)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += count_model_tokens(part["text"], model)
    most = body.get("max_completion_tokens", body.get("max_tokens"))
    return total + (most if isinstance(most, int) and not isinstance(most, bool) else 0)


@dataclass
class RateLimits:
    """Every model's limits; configured at run time through `/_dev/config`."""

    burst_s: float = 1.0
    models: dict[str, ModelLimits] = field(default_factory=dict)
    spec: dict[str, dict[str, int]] = field(default_factory=dict)
    # Requests and tokens the limited models let through (what "the physical limit" is made of).
    charged_requests: int = 0
    charged_tokens: int = 0

    def configure(self, spec: dict[str, dict[str, int]], burst_s: float) -> None:
        """Replace the limits (`{"gpt-4o-mini": {"rpm": 500, "tpm": 200000}}`); buckets start full."""
        self.burst_s = burst_s
        self.spec = spec
        # Requests name the bare model ("gpt-4o-mini"); a spec may name it with its provider.
        self.models = {
            model.split("/", 1)[-1]: ModelLimits(
                _Bucket(v["rpm"], burst_s) if v.get("rpm") else None,
                _Bucket(v["tpm"], burst_s) if v.get("tpm") else None,
            )
            for model, v in spec.items()
        }

    def check(self, model: str, body: dict[str, Any]) -> tuple[bool, dict[str, str]]:
        """Admit (and charge) one request of `model`, or refuse it; the headers to answer with."""
        limits = self.models.get(model)
        if limits is None:
            return True, {}
        now = time.monotonic()
        tokens = request_tokens(body, model) if limits.tokens is not None else 0
        waits = [b.wait(now) for b in (limits.requests, limits.tokens) if b is not None]
        wait = max(waits, default=0.0)
        if wait <= 0:
            if limits.requests is not None:
                limits.requests.charge(now, 1)
            if limits.tokens is not None:
                limits.tokens.charge(now, tokens)
            self.charged_requests += 1
            self.charged_tokens += tokens
        headers: dict[str, str] = {}
        for name, bucket in (("requests", limits.requests), ("tokens", limits.tokens)):
            if bucket is not None:
                headers[f"x-ratelimit-limit-{name}"] = str(bucket.per_min)
                headers[f"x-ratelimit-remaining-{name}"] = str(bucket.remaining(now))
                headers[f"x-ratelimit-reset-{name}"] = _duration(bucket.reset_s(now))
        if wait > 0:
            headers["retry-after-ms"] = str(math.ceil(wait * 1000))
            headers["retry-after"] = f"{wait:.3f}"
        return wait <= 0, headers


def parse_limits(raw: Any) -> dict[str, dict[str, int]]:
    """Validate `rate_limits` from the admin API (ValueError naming what is wrong)."""
    if not isinstance(raw, dict):
        raise ValueError('rate_limits must be an object like {"gpt-4o-mini": {"rpm": 500, "tpm": 200000}}')
    out: dict[str, dict[str, int]] = {}
    for model, spec in raw.items():
        if not isinstance(spec, dict) or not spec or set(spec) - {"rpm", "tpm"}:
            raise ValueError(f"rate_limits[{model!r}] must be an object with rpm and/or tpm")
        for key, value in spec.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"rate_limits[{model!r}].{key} must be a positive integer")
        out[str(model)] = dict(spec)
    return out
