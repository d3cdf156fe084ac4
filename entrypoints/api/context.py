"""What the web process holds: settings, Redis, the object store, the broker, the API's stores and pools.

Built by the composition root (`entrypoints.compose.api_context`). No model client: the web
process never imports litellm (seconds and ~200 MB).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from dramatiq import Broker

from adapters.redis_conn import AsyncRedis
from adapters.settings import Settings
from adapters.store import ObjectStore
from adapters.tokens import TokenStore
from entrypoints.api.bulkhead import Pools
from entrypoints.api.idempotency import Idempotency
from entrypoints.api.limits import RateLimiter
from pipelines.batches import Batches
from pipelines.status import JobStatus


@dataclass
class ApiContext:
    settings: Settings
    redis: redis.Redis
    store: ObjectStore
    broker: Broker
    status: JobStatus
    tokens: TokenStore
    limiter: RateLimiter
    batches: Batches
    idempotency: Idempotency
    aredis: AsyncRedis  # the event loop's Redis: tokens, rate limits, idempotency keys, /healthz
    pools: Pools  # every blocking call a route makes runs in one of these, never on the loop
