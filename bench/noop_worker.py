"""The queue and worker floors: a bare Dramatiq worker module (`dramatiq bench.noop_worker`).

Plain `RedisBroker` with Dramatiq's default middleware plus `AsyncIO` and the batch lane's
CPU placement, run with the same worker flags as the pipeline. `bench_noop` does nothing:
what Dramatiq itself costs per message. `bench_call` makes one model call through the
pipeline's gateway client (litellm) and nothing else: what one worker process can carry at
a given latency before any pipeline work.
"""

from __future__ import annotations

import functools
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO, Middleware

from adapters.settings import get_settings
from pipelines.lanes import LanePlacement

QUEUE = "bench_noop"


class WarmGateway(Middleware):
    """Import litellm and run its path once at boot in every process, as the pipeline's worker
    does (entrypoints/worker.py): a process that met its first `bench_call` cold would charge
    seconds of imports to the floor's CPU per message."""

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        from bench.floors import requests

        _gateway().warm_up(requests(1)[0]["model"], [{"role": "user", "content": "warm"}])


broker = RedisBroker(url=get_settings().redis_url)
broker.add_middleware(AsyncIO())
# Placed on the CPU as the pipeline's batch worker is (pipelines/lanes.py): like with like.
broker.add_middleware(LanePlacement())
broker.add_middleware(WarmGateway())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_noop", max_retries=0)
async def bench_noop(n: int) -> None:
    """Nothing: the message's cost is all Dramatiq's."""


@functools.cache
def _gateway() -> Any:
    from agents.gateway import GatewayClient, GatewayConfig

    return GatewayClient(GatewayConfig(base_url=get_settings().gateway_base_url or ""))


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_call", max_retries=0)
async def bench_call(request: dict[str, Any]) -> None:
    """One chat completion through the pipeline's gateway client, and nothing else: the worker floor."""
    from bench.floors import complete

    await complete(_gateway(), request)
