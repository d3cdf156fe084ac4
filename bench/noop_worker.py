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
from dramatiq.middleware import AsyncIO

from adapters.settings import get_settings
from pipelines.lanes import LanePlacement

QUEUE = "bench_noop"

broker = RedisBroker(url=get_settings().redis_url)
broker.add_middleware(AsyncIO())
# Placed on the CPU as the pipeline's batch worker is (pipelines/lanes.py): like with like.
broker.add_middleware(LanePlacement())
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
