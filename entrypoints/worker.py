"""What the Procfile's worker lines hand to the `dramatiq` command: `dramatiq entrypoints.worker:setup`.

Dramatiq calls `setup()` in each worker process; it builds the broker (every actor declared)
through the composition root and makes it the process's broker.
"""

from __future__ import annotations

import gc
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from adapters.logs import get_logger
from adapters.settings import get_settings
from entrypoints import compose
from pipelines.dramatiq_gaps import StopOnce
from pipelines.lanes import LanePlacement

log = get_logger("entrypoints.worker")


class Warmup(Middleware):
    """Build the process's services (litellm import, clients, prompts) before the first message,
    then keep what boot built out of the garbage collector's way (`keep_boot_heap`)."""

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        from pipelines.personalize import warm_up

        warm_up(compose.services())
        keep_boot_heap()


def keep_boot_heap() -> None:
    """Move every object alive now into the collector's permanent generation (`gc.freeze`).

    What a worker builds at boot (litellm's ~440,000 objects, mostly) lives as long as the
    process, yet every full collection walked it: ~0.2 s a pass on the benchmark machine, about
    ten passes a minute under load (decision 0027). Boot's own garbage is collected first, so
    none of it is kept for good. Objects made later are collected as before.
    """
    gc.collect()
    gc.freeze()
    log.info("boot_heap_frozen", frozen_objects=gc.get_freeze_count())


def setup() -> None:
    """Build this worker process's broker and wire its services (they are built at boot)."""
    settings = get_settings()
    compose.configure(settings)
    compose.check_redis(settings)
    compose.wire(settings)
    # Lane placement before the warm-up: the warm-up runs where the worker will.
    broker = compose.new_broker(settings, extra_middleware=(LanePlacement(), Warmup(), StopOnce()))
    dramatiq.set_broker(broker)
