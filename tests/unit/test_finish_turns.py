"""Finish turns: after a slow call, jobs finish their answers in arrival order, a few at a time."""

from __future__ import annotations

import asyncio

import pytest

from agents.finish_turns import FinishTurns


async def _finish(
    turns: FinishTurns, name: str, latency_ms: float, log: list[str], inside: list[int]
) -> None:
    async with turns.turn(latency_ms):
        inside[0] += 1
        inside[1] = max(inside[1], inside[0])
        log.append(f"{name} in")
        await asyncio.sleep(0.01)  # the after-call work, with an await in it (the ledger settles)
        log.append(f"{name} out")
        inside[0] -= 1


def _run(turns: FinishTurns, latencies: list[float]) -> tuple[list[str], int]:
    log: list[str] = []
    inside = [0, 0]  # now, most at once

    async def main() -> None:
        await asyncio.gather(*(_finish(turns, f"j{i}", ms, log, inside) for i, ms in enumerate(latencies)))

    asyncio.run(main())
    return log, inside[1]


def test_slow_answers_finish_a_few_at_a_time_in_arrival_order() -> None:
    log, most = _run(FinishTurns(size=2, slow_ms=1000), [2000.0] * 6)
    assert most == 2
    entered = [e.split()[0] for e in log if e.endswith(" in")]
    assert entered == [f"j{i}" for i in range(6)]
    # The first two finish before the fifth starts: a job does not wait for the whole wave.
    assert log.index("j0 out") < log.index("j4 in")


def test_fast_answers_take_no_turn() -> None:
    _, most = _run(FinishTurns(size=2, slow_ms=1000), [5.0] * 6)
    assert most == 6  # all interleave, as without turns


def test_size_zero_is_off() -> None:
    _, most = _run(FinishTurns(size=0), [5000.0] * 6)
    assert most == 6


def test_each_event_loop_has_its_own_turns() -> None:
    turns = FinishTurns(size=1, slow_ms=0)
    # A semaphore first used on one loop would fail on the next; each loop gets its own.
    for _ in range(2):
        _, most = _run(turns, [1.0] * 3)
        assert most == 1


def test_a_negative_size_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="size >= 0"):
        FinishTurns(size=-1)
