"""New work for a store whose daily budget is spent is refused before it is enqueued.

Without this, every job accepted for such a store failed on its first model call
(`BudgetExceeded`, never retried) and went to the dead-letter queue. The per-call holds
(adapters/ledger.py) still guard the jobs already queued; this is the door in front of them.
Personalization is not refused here: with no budget it answers from the cohort's last good
result or the default ordering, at no cost (decision 0016).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from adapters.ledger import Ledger, usd, usd_to_nano

DAY_S = 24 * 3600


@dataclass(frozen=True)
class Spent:
    """Why a store's new work is refused, and when the budget resets (the next UTC midnight)."""

    store: str
    message: str
    retry_after_s: int


def spent_budget(
    ledger: Ledger, store: str, daily_budget_usd: float, now: float | None = None
) -> Spent | None:
    """`Spent` when what `store` spent today (UTC) has reached its daily budget, else None."""
    state = ledger.budget(store, usd_to_nano(daily_budget_usd))
    if state.spent_nano < state.budget_nano:
        return None
    now = time.time() if now is None else now
    left = max(1, math.ceil(DAY_S - now % DAY_S))
    which = "its daily budget" if state.overridden else "its daily budget (DAILY_BUDGET_USD)"
    message = (
        f"store {store} has spent {which} of ${usd(state.budget_nano)} today "
        f"(${usd(state.spent_nano)} spent, UTC day {state.day}); nothing was enqueued. "
        f"The budget resets at 00:00 UTC, in {left // 3600}h{left % 3600 // 60:02d}m; "
        f"ops can raise it with `wandstore-agents budget set {store} USD`"
    )
    return Spent(store, message, left)
