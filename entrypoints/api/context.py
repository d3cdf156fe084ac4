"""What the web process holds: settings, Redis, the object store, the broker, and the API's stores.

No model client: the web process never imports litellm (seconds and ~200 MB).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from dramatiq import Broker

from adapters.redis_conn import get_redis, resolve_url
from adapters.settings import Settings
from adapters.store import ObjectStore, open_store
from adapters.tokens import TokenStore
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


def build_context(
    settings: Settings, store: ObjectStore | None = None, broker: Broker | None = None
) -> ApiContext:
    """Everything the routes need, from one settings object (`store`, `broker` override the defaults)."""
    if broker is None:
        from pipelines.broker import broker as process_broker  # sets the global broker on import

        broker = process_broker

    client = get_redis(resolve_url(settings))
    status = JobStatus(client)
    ops = settings.ops_api_token.get_secret_value() if settings.ops_api_token else None
    return ApiContext(
        settings=settings,
        redis=client,
        store=store if store is not None else open_store(settings),
        broker=broker,
        status=status,
        tokens=TokenStore(client, ops_token=ops),
        limiter=RateLimiter(client, settings.api_rate_limit, settings.api_rate_window_s),
        batches=Batches(broker, status),
        idempotency=Idempotency(client),
    )
