"""What the Procfile's worker lines hand to the `dramatiq` command: `dramatiq entrypoints.worker:setup`.

Dramatiq calls `setup()` in each worker process; it builds the broker (every actor declared)
through the composition root and makes it the process's broker.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from adapters.logs import get_logger
from adapters.settings import get_settings
from entrypoints import compose
from entrypoints.heap import keep_boot_heap
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


def setup() -> None:
    """Build this worker process's broker and wire its services (they are built at boot)."""
    settings = get_settings()
    compose.configure(settings)
    compose.check_redis(settings)
    compose.wire(settings)
    # Lane placement before the warm-up: the warm-up runs where the worker will.
    broker = compose.new_broker(settings, extra_middleware=(LanePlacement(), Warmup(), StopOnce()))
    dramatiq.set_broker(broker)
