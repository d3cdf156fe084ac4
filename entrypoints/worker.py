"""What the Procfile's worker lines hand to the `dramatiq` command: the broker and every actor."""

from __future__ import annotations

from typing import Any

from dramatiq.middleware import Middleware

from pipelines import actors  # noqa: F401  (registers the actors)
from pipelines.broker import broker
from pipelines.lanes import LanePlacement
from pipelines.shutdown import StopOnce


class Warmup(Middleware):
    """Build the process's services (litellm import, clients, prompts) before the first message."""

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        from pipelines.personalize import warm_up
        from pipelines.services import get_services

        warm_up(get_services())


broker.add_middleware(LanePlacement())  # before the warm-up: it runs where the worker will
broker.add_middleware(Warmup())
broker.add_middleware(StopOnce())

__all__ = ["broker"]
