"""Work a job starts but does not wait for (callbacks, a generation that outlived its deadline).

asyncio keeps only weak references to tasks: one nobody holds can vanish mid-flight, so
they are held here until done, and their errors are logged instead of lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from adapters.logs import get_logger

log = get_logger("pipelines.background")
_tasks: set[asyncio.Future[Any]] = set()


def keep(task: asyncio.Future[Any], what: str) -> asyncio.Future[Any]:
    """Hold `task` until it finishes; log its error if it fails."""
    _tasks.add(task)

    def done(t: asyncio.Future[Any]) -> None:
        _tasks.discard(t)
        if t.cancelled():
            return
        exc = t.exception()
        if exc is not None:
            log.warning("background_task_failed", what=what, error=f"{type(exc).__name__}: {exc}")

    task.add_done_callback(done)
    return task


def spawn(work: Awaitable[Any], what: str) -> asyncio.Future[Any]:
    """Run `work` on the running loop without waiting for it."""
    return keep(asyncio.ensure_future(work), what)


async def drain(timeout_s: float = 30.0) -> None:
    """Wait for the background work started on this loop (tests, benchmarks, shutdown)."""
    loop = asyncio.get_running_loop()
    mine = [t for t in _tasks if t.get_loop() is loop]
    if mine:
        await asyncio.wait(mine, timeout=timeout_s)
