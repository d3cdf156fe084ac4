"""After a slow model call, a job finishes its answer in arrival order, a few at a time per loop.

A worker's event loop runs a hundred or more jobs. When model calls take seconds, the answers
come back together, and asyncio takes turns among every ready coroutine: each job's after-call
work (parse, validate, sanitize, settle the budget hold) interleaves with all the others', so
none finishes until nearly all have. The jobs then free their worker threads together, send
their next calls together, and the next answers come back together again: the calls in flight
swing between all and none. Taking turns in arrival order instead lets the first answers
finish first, so threads come free, and calls go out, spread over time (decision 0033).

A fast answer (a gateway cache hit, a zero-latency benchmark) takes no turn: then the CPU, not
the threads, limits the job rate, and turns only cost (less work batched per loop pass).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator


class FinishTurns:
    """At most `size` jobs per event loop finish a slow answer at once, first come first served.

    `size` 0 turns it off. A call that took under `slow_ms` goes straight through.
    """

    def __init__(self, size: int = 0, slow_ms: float = 1000.0) -> None:
        if size < 0 or slow_ms < 0:
            raise ValueError(f"finish turns need size >= 0 and slow_ms >= 0, got {size}, {slow_ms}")
        self.size = size
        self.slow_ms = slow_ms
        # One gate per loop: a semaphore belongs to the loop it first waits on.
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.size)
        return gate

    @contextlib.asynccontextmanager
    async def turn(self, latency_ms: float) -> AsyncIterator[None]:
        """Hold a turn (if the call was slow) while the block runs."""
        if self.size == 0 or latency_ms < self.slow_ms:
            yield
            return
        async with self._gate():  # asyncio.Semaphore wakes its waiters in order
            yield
