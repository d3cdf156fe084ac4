"""Shopify's cost-based throttle, as a client sees it: a leaky bucket of query points.

Every GraphQL answer carries `extensions.cost`: what the query was expected to cost
(`requestedQueryCost`), what it did cost, and the bucket (`throttleStatus`:
`maximumAvailable`, `currentlyAvailable`, `restoreRate` points a second). A query whose
requested cost exceeds what is available is refused with a `THROTTLED` error and costs
nothing. `Bucket` remembers the last status and when it was seen, so the client waits for
just enough points before its next query instead of being refused, and waits out a refusal
for exactly the points missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MARGIN_S = 0.05  # the bucket refills continuously; a hair more wait absorbs clock skew


@dataclass
class Bucket:
    maximum: float = 1000.0
    available: float = 1000.0
    restore_rate: float = 50.0
    seen_at: float | None = None
    last_cost: float | None = None  # requestedQueryCost of the last query (the next page costs the same)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def observe(self, extensions: Any) -> None:
        """Remember the bucket from a response's `extensions` (ignored when absent or malformed)."""
        cost = extensions.get("cost") if isinstance(extensions, dict) else None
        if not isinstance(cost, dict) or not isinstance(cost.get("throttleStatus"), dict):
            return
        status = cost["throttleStatus"]
        try:
            self.maximum = float(status["maximumAvailable"])
            self.available = float(status["currentlyAvailable"])
            self.restore_rate = max(float(status["restoreRate"]), 0.001)
        except (KeyError, TypeError, ValueError):
            return
        self.seen_at = self.clock()
        requested = cost.get("requestedQueryCost")
        if isinstance(requested, int | float):
            self.last_cost = float(requested)

    def now_available(self) -> float:
        if self.seen_at is None:
            return self.maximum
        refilled = self.available + (self.clock() - self.seen_at) * self.restore_rate
        return min(self.maximum, refilled)

    def wait_for(self, cost: float | None) -> float:
        """Seconds until `cost` points are available (0 when they are, or the cost is unknown)."""
        if cost is None or self.seen_at is None:
            return 0.0
        missing = min(cost, self.maximum) - self.now_available()
        return missing / self.restore_rate + MARGIN_S if missing > 0 else 0.0
