"""What the web process holds: settings, Redis, the object store, the broker, and the API's stores.

Built by the composition root (`entrypoints.compose.api_context`). No model client: the web
process never imports litellm (seconds and ~200 MB).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from dramatiq import Broker

from adapters.settings import Settings
from adapters.store import ObjectStore
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
