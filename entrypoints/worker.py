"""What the Procfile's worker lines hand to the `dramatiq` command: `dramatiq entrypoints.worker:setup`.

Dramatiq calls `setup()` in each worker process; it builds the broker (every actor declared)
through the composition root and makes it the process's broker.
"""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from adapters.logs import get_logger
from adapters.settings import get_settings
from entrypoints import compose
from entrypoints.heap import keep_boot_heap
from pipelines.dramatiq_gaps import StopOnce, served_queues
from pipelines.lanes import LanePlacement
from pipelines.queues import INTERACTIVE

log = get_logger("entrypoints.worker")


class Warmup(Middleware):
    """Build the process's services (litellm import, clients, prompts) and make one mock call, then
    keep what boot built out of the garbage collector's way (`keep_boot_heap`).

    A worker that serves the interactive queue warms before its consumers start: after a deploy,
    a shopper's request taken by a cold process would wait seconds for litellm's import, past its
    deadline. A batch-only worker warms once booted, after lane placement has put it where it
    runs (pipelines/lanes.py): its jobs can wait that long.
    """

    def __init__(self) -> None:
        self._warm = False

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        queues = served_queues(worker)
        if queues is None or INTERACTIVE in queues:
            self._warm_up()

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        if not self._warm:
            self._warm_up()

    def _warm_up(self) -> None:
        from pipelines.personalize import warm_up

        started = time.perf_counter()
        warm_up(compose.services())
        keep_boot_heap()
        self._warm = True
        log.info("worker_warm", took_ms=round((time.perf_counter() - started) * 1000))


def setup() -> None:
    """Build this worker process's broker and wire its services (they are built at boot)."""
    settings = get_settings()
    compose.configure(settings)
    compose.check_redis(settings)
    compose.wire(settings)
    # Lane placement before the warm-up: the warm-up runs where the worker will.
    broker = compose.new_broker(settings, extra_middleware=(LanePlacement(), Warmup(), StopOnce()))
    dramatiq.set_broker(broker)
