"""The Dramatiq broker: Redis (or the embedded Valkey), with this project's middleware.

Nothing is built at import: the composition root (entrypoints/compose.py) calls `build_broker`.
"""

from __future__ import annotations

from typing import Any

import redis
from dramatiq.broker import Consumer
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    ShutdownNotifications,
    TimeLimit,
)

from adapters.settings import Settings
from pipelines.dead_letters import DeadLetterReasons, record_undecodable
from pipelines.dramatiq_gaps import DurableRetries, GuardedConsumer
from pipelines.fastlane import WokenConsumer, waiter_for
from pipelines.lost_jobs import JobLocations
from pipelines.maintenance import BrokerMaintenance
from pipelines.metrics import WorkerMetrics
from pipelines.middleware import AsyncEventLoop, JobTracking, LogContext, should_retry
from pipelines.poison import ArgumentCheck
from pipelines.queues import BATCH, INTERACTIVE
from pipelines.tracing import JobTrace

MAX_RETRIES = 6


class WandstoreBroker(RedisBroker):
    """Dramatiq's Redis broker, whose consumers fill its gaps (pipelines/dramatiq_gaps.py) and whose
    fast queues (`poll_ms={queue: ms}`) wake idle consumers on a push (pipelines/fastlane.py).

    `poll_ms` is a fast queue's idle poll when it cannot wait for a push; `wake_ms` the longest
    it waits for one.
    """

    def __init__(self, *, poll_ms: dict[str, int] | None = None, wake_ms: int = 100, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.poll_ms = dict(poll_ms or {})
        self.wake_ms = wake_ms

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        poll = self.poll_ms.get(queue_name)
        waiter = waiter_for(self.client, f"{self.namespace}:{queue_name}", self.wake_ms) if poll else None
        if poll:
            # Woken by a push: no sleep of its own after an empty fetch. Else the fast poll.
            timeout = 1 if waiter is not None else min(timeout, poll)
        consumer: Consumer = GuardedConsumer(
            self, queue_name, super().consume(queue_name, prefetch, timeout), record_undecodable
        )
        return WokenConsumer(consumer, waiter, poll or 1) if waiter is not None else consumer


def build_broker(settings: Settings, client: redis.Redis) -> RedisBroker:
    """A RedisBroker with retries for transient errors only, async actors and job tracking."""
    middleware = [
        # First in the list, so its after_* hooks run last: once Retries has decided.
        JobTracking(),
        # Next: its after hook ends the job's span once Retries has decided, before the status is written.
        JobTrace(),
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
        # Which copy of a job's message is current (a job whose message is gone is reported lost).
        JobLocations(),
        # Every worker process: heartbeat and maintenance on a timer, a sweep at start.
        BrokerMaintenance(
            settings.broker_maintenance_interval_ms,
            lost_after_s=settings.jobs_lost_after_s,
            draft_retention_days=settings.draft_retention_days,
        ),
    ]
    return WandstoreBroker(
        client=client,
        middleware=middleware,
        # The interactive lane's idle consumers are woken by a push (see pipelines/fastlane.py).
        poll_ms={INTERACTIVE: settings.interactive_poll_ms},
        wake_ms=settings.interactive_wake_ms,
        # How soon a dead worker's claimed messages go back on their queues (pipelines/maintenance.py).
        heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
        maintenance_chance=settings.broker_maintenance_chance,
    )


__all__ = ["BATCH", "INTERACTIVE", "build_broker"]
