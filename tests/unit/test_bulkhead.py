"""Bulkheads: bounded threads, a queue, a timeout for reads, a breaker (entrypoints/api/bulkhead.py)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from adapters.errors import NotFound, TransientStoreError
from entrypoints.api.bulkhead import Breaker, Bulkhead, Spec, Unavailable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_failures_in_a_row_then_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = Breaker(threshold=3, reset_s=5.0, clock=clock)
    # Given two failures, a success, and three failures
    breaker.failure()
    breaker.failure()
    breaker.success()
    assert breaker.admit() is None
    opened = [breaker.failure() for _ in range(3)]
    # Then only the third in a row opened it, and calls wait out the reset time
    assert opened == [False, False, True] and breaker.state == "open"
    assert breaker.admit() == pytest.approx(5.0)
    clock.now += 4.0
    assert breaker.admit() == pytest.approx(1.0)
    # When the reset time has passed, one probe goes through and the rest are refused
    clock.now += 1.0
    assert breaker.admit() is None
    assert breaker.admit() == 5.0
    # And a failed probe opens it again at once; a successful one closes it
    assert breaker.failure() is True and breaker.state == "open"
    clock.now += 5.0
    assert breaker.admit() is None
    breaker.success()
    assert breaker.state == "closed" and breaker.admit() is None


def _store_failing(exc: BaseException) -> bool:
    return isinstance(exc, TransientStoreError)


def _bulkhead(size: int = 2, queue: int = 1, timeout_s: float | None = 0.2) -> Bulkhead:
    spec = Spec("test", size, queue, timeout_s, "store_error", "the store", _store_failing)
    return Bulkhead(spec, Breaker(threshold=2, reset_s=60))


def test_a_full_bulkhead_refuses_at_once_and_a_stuck_call_keeps_its_thread() -> None:
    pool = _bulkhead(size=2, queue=1, timeout_s=0.2)
    release = threading.Event()

    async def scenario() -> list[Any]:
        # Given calls that hang until released: 2 run, 1 waits for a thread
        stuck = [asyncio.ensure_future(pool.run(release.wait)) for _ in range(3)]
        await asyncio.sleep(0)  # let them be admitted
        # When a fourth comes
        with pytest.raises(Unavailable) as full:
            await pool.run(lambda: "never")
        outcomes = await asyncio.gather(*stuck, return_exceptions=True)
        return [full.value, *outcomes]

    try:
        full, *timed_out = asyncio.run(scenario())
    finally:
        release.set()
    # Then it is refused at once as busy, and the three that waited time out with 503s
    assert full.status == 503 and "busy" in full.message
    assert all(isinstance(e, Unavailable) and "did not answer within 0.2s" in e.message for e in timed_out)
    pool.close()


def test_failures_open_the_breaker_but_answers_do_not() -> None:
    pool = _bulkhead()

    def missing() -> None:
        raise NotFound("no such key")

    def down() -> None:
        raise TransientStoreError("R2 is unavailable")

    async def scenario() -> Unavailable:
        for _ in range(5):  # NotFound is an answer: the breaker stays closed
            with pytest.raises(NotFound):
                await pool.run(missing)
        for _ in range(2):
            with pytest.raises(TransientStoreError):
                await pool.run(down)
        with pytest.raises(Unavailable) as paused:
            await pool.run(lambda: "not called")
        return paused.value

    paused = asyncio.run(scenario())
    assert "paused" in paused.message and paused.headers == {"Retry-After": "60"}
    pool.close()


def test_a_call_with_side_effects_is_waited_for_not_abandoned() -> None:
    pool = _bulkhead(timeout_s=0.05)
    release = threading.Event()
    done: list[str] = []

    def enqueue() -> str:
        release.wait()
        done.append("enqueued")
        return "job-1"

    async def scenario() -> str:
        call = asyncio.ensure_future(pool.run(enqueue, abandon=False))
        # Past the timeout the request still waits: it must not answer 503 for work that is done
        await asyncio.sleep(0.15)
        assert not call.done()
        release.set()
        return await call

    assert asyncio.run(scenario()) == "job-1" and done == ["enqueued"]
    pool.close()
