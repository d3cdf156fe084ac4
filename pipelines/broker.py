"""The Dramatiq broker: Redis (or the embedded Valkey), with this project's middleware.

Nothing is built at import: the composition root (entrypoints/compose.py) calls `build_broker`.
"""

from __future__ import annotations

from typing import Any

from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    ShutdownNotifications,
    TimeLimit,
)

from adapters.redis_batch import batcher_for
from adapters.settings import Settings
from pipelines.consumer import WandstoreConsumer
from pipelines.dead_letters import DeadLetterReasons
from pipelines.durable import DurableRetries
from pipelines.fastlane import FastLaneBroker
from pipelines.metrics import WorkerMetrics
from pipelines.middleware import AsyncEventLoop, JobTracking, LogContext, should_retry
from pipelines.poison import ArgumentCheck
from pipelines.queues import BATCH, INTERACTIVE

MAX_RETRIES = 6


class WandstoreBroker(FastLaneBroker):
    """The fast-lane Redis broker with this project's consumer (see pipelines/consumer.py)."""

    consumer_class = WandstoreConsumer

    def dispatch_lean(self, command: str, queue_name: str, *args: Any) -> Any:
        """`do_<command>`, sent with whatever other Redis calls this process has waiting.

        Worker threads ack through this: the same script on a lean pooled connection, ~10 us
        of parsing instead of redis-py's ~100 (see adapters/resp.py).
        """
        argv = [
            command,
            current_millis(),
            queue_name,
            self.broker_id,
            self.heartbeat_timeout,
            self.dead_message_ttl,
            self._should_do_maintenance(command),
            self._max_unpack_size(),
            *args,
        ]
        return batcher_for(self.client).script_sync(self.scripts["dispatch"], [self.namespace], argv)


def build_broker(settings: Settings, url: str) -> RedisBroker:
    """A RedisBroker with retries for transient errors only, async actors and job tracking."""
    middleware = [
        # First in the list, so its after_* hooks run last: once Retries has decided.
        JobTracking(),
        WorkerMetrics(),
        LogContext(),
        AgeLimit(),
        TimeLimit(time_limit=30 * 60 * 1000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        DurableRetries(max_retries=MAX_RETRIES, min_backoff=500, max_backoff=60_000, retry_when=should_retry),
        AsyncEventLoop(),
        CurrentMessage(),
        ArgumentCheck(),
        DeadLetterReasons(),
    ]
    return WandstoreBroker(
        url=url,
        middleware=middleware,
        # The interactive lane's idle consumers are woken at enqueue (see pipelines/fastlane.py).
        poll_ms={INTERACTIVE: settings.interactive_poll_ms},
        wake_ms=settings.interactive_wake_ms,
        # How soon a dead worker's claimed messages go back on their queues.
        heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
        maintenance_chance=settings.broker_maintenance_chance,
    )


__all__ = ["BATCH", "INTERACTIVE", "build_broker"]
