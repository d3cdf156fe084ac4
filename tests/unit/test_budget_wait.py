"""A call held up only by other calls' budget holds waits for them (adapters/retry), until its limit."""

from __future__ import annotations

import asyncio
import time

import pytest

from adapters.errors import BudgetExceeded
from adapters.ledger import Refusal, Reservation
from agents.usage import CallContext
from pipelines.accounting import LedgerSink

HELD = Refusal("day", "s1", "j1", limit_nano=1000, spent_nano=100, held_nano=800, worst_nano=500)
SPENT = Refusal("day", "s1", "j1", limit_nano=1000, spent_nano=900, held_nano=0, worst_nano=500)
HOLD = Reservation("s1", "2026-12-06", "j1", 500, "r1")


class Sink(LedgerSink):
    """The ledger's answers scripted: each try takes the next one."""

    def __init__(self, answers: list[Reservation | Refusal], hold_wait_s: float = 5.0) -> None:
        self.answers, self.tries, self.hold_wait_s = answers, 0, hold_wait_s

    async def _try_reserve(self, ctx: CallContext, worst_case_nano: int) -> Reservation | Refusal:
        self.tries += 1
        return self.answers[min(self.tries, len(self.answers)) - 1]


def reserve(sink: Sink) -> Reservation:
    ctx = CallContext(store="s1", pipeline="product_copy", job_id="j1")
    return asyncio.run(sink.reserve(ctx, "openai/gpt-4o-mini", 500))


def test_a_call_held_up_by_holds_gets_its_hold_once_they_settle() -> None:
    sink = Sink([HELD, HELD, HOLD])
    assert reserve(sink) == HOLD and sink.tries == 3


def test_a_call_the_spend_leaves_no_room_for_is_refused_at_once() -> None:
    sink = Sink([SPENT, HOLD])
    with pytest.raises(BudgetExceeded, match="s1"):
        reserve(sink)
    assert sink.tries == 1


def test_holds_that_never_settle_refuse_the_call_by_its_wait_limit() -> None:
    sink = Sink([HELD], hold_wait_s=0.3)
    started = time.monotonic()
    with pytest.raises(BudgetExceeded):
        reserve(sink)
    assert sink.tries > 3 and time.monotonic() - started < 0.3 + 0.5


class Holds(Sink):
    """Scripted answers, and the hold each try asked for."""

    def __init__(self, answers: list[Reservation | Refusal], hold_wait_s: float = 5.0) -> None:
        super().__init__(answers, hold_wait_s)
        self.asked: list[int] = []

    async def _try_reserve(self, ctx: CallContext, worst_case_nano: int) -> Reservation | Refusal:
        self.asked.append(worst_case_nano)
        return await super()._try_reserve(ctx, worst_case_nano)


def reserve_bounded(sink: Holds, counts: list[int]) -> Reservation:
    """A hold of the bound 900, whose exact worst case (500) is worked out only on demand."""

    async def exact() -> int:
        counts.append(500)
        return 500

    ctx = CallContext(store="s1", pipeline="product_copy", job_id="j1")
    return asyncio.run(sink.reserve(ctx, "openai/gpt-4o-mini", 900, exact))


def test_a_bound_that_fits_is_held_and_nothing_is_counted() -> None:
    sink, counts = Holds([HOLD]), []
    assert reserve_bounded(sink, counts) == HOLD
    assert sink.asked == [900] and counts == []


def test_a_bound_that_does_not_fit_is_replaced_by_the_exact_worst_case() -> None:
    sink, counts = Holds([SPENT, HOLD]), []
    assert reserve_bounded(sink, counts) == HOLD
    assert sink.asked == [900, 500] and counts == [500]


def test_the_exact_worst_case_decides_a_refusal_and_is_counted_once() -> None:
    sink, counts = Holds([SPENT, SPENT, HOLD]), []
    with pytest.raises(BudgetExceeded, match="s1"):
        reserve_bounded(sink, counts)
    assert sink.asked == [900, 500] and counts == [500]


def test_holds_in_the_way_of_the_exact_worst_case_are_waited_for_with_it() -> None:
    sink, counts = Holds([HELD, HELD, HELD, HOLD]), []
    assert reserve_bounded(sink, counts) == HOLD
    assert sink.asked == [900, 500, 500, 500] and counts == [500]
