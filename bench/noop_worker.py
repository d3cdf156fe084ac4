"""The queue floor: a bare Dramatiq worker module (`dramatiq bench.noop_worker`) with a no-op actor.

Plain `RedisBroker` with Dramatiq's default middleware plus `AsyncIO`, no project code: what
Dramatiq itself costs per message, run with the same worker flags as the pipeline.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO

from wandstore_agents.settings import get_settings

QUEUE = "bench_noop"

broker = RedisBroker(url=get_settings().redis_url)
broker.add_middleware(AsyncIO())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_noop", max_retries=0)
async def bench_noop(n: int) -> None:
    """Nothing: the message's cost is all Dramatiq's."""
