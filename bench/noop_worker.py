"""The queue and worker floors: a bare Dramatiq worker module (`dramatiq bench.noop_worker`).

Plain `RedisBroker` with Dramatiq's default middleware plus `AsyncIO`, run with the same
worker flags as the pipeline. `bench_noop` does nothing: what Dramatiq itself costs per
message. `bench_call` makes one model call on the pipeline's own transport and nothing else:
what one worker process can carry at a given latency before any pipeline work.
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


_http: list[object] = []


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_call", max_retries=0)
async def bench_call(body: dict[str, object]) -> None:
    """One chat completion on the pipeline's own transport, and nothing else: the worker floor."""
    from agents.openai_http import OpenAIHttp

    if not _http:
        _http.append(OpenAIHttp(timeout_s=60))
    http = _http[0]
    assert isinstance(http, OpenAIHttp)
    base = get_settings().gateway_base_url
    await http.chat(f"{base}/openai", body, {"authorization": "Bearer gateway-managed"})
