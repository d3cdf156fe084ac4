"""Broker writes that must survive a Redis blip: retried until Redis answers again.

Dramatiq itself retries an ack until the connection recovers, but it runs middleware
after-hooks once and only logs their failures: a retry that could not be enqueued while
Redis was down was lost (the message was then acked), and so was the job's final status.
These make the job-status writes wait for Redis instead, the way the ack does (the retry's
enqueue waits the same way: `pipelines.dramatiq_gaps.DurableRetries`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis

from adapters import retry
from adapters.errors import BrokerUnavailable
from adapters.logs import get_logger
from pipelines.status import JobStatus

T = TypeVar("T")
GIVE_UP_S = 600.0  # then the write fails as before (logged); Redis down for 10 minutes is an outage
log = get_logger("pipelines.durable")


def until_redis_answers(write: Callable[[], T], what: str, give_up_s: float = GIVE_UP_S) -> T:
    """Run `write`, retrying with backoff (50 ms doubling to ~1 s) while Redis cannot be reached."""

    def warn_once(state: retry.RetryCallState) -> None:
        if state.attempt_number == 1 and state.outcome is not None:
            log.warning("redis_unavailable_waiting", what=what, error=str(state.outcome.exception()))

    return retry.call(
        write,
        on=(redis.ConnectionError, redis.TimeoutError, BrokerUnavailable),
        base_s=0.05,
        cap_s=1.0,
        give_up_s=give_up_s,
        before_sleep=warn_once,
    )


class DurableStatus:
    """`JobStatus` whose writes wait for Redis (for middleware hooks, not for API requests)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._status = JobStatus(client)

    def update(self, job_id: str, **fields: Any) -> None:
        until_redis_answers(lambda: self._status.update(job_id, **fields), "job status")

    def started(self, job_id: str, **fields: Any) -> None:
        until_redis_answers(lambda: self._status.started(job_id, **fields), "job start")

    def finished(self, job_id: str, outcome: str, **kwargs: Any) -> tuple[str | None, str | None]:
        """`JobStatus.finished`, waiting Redis out: a lost end would leave the job running for ever."""
        return until_redis_answers(lambda: self._status.finished(job_id, outcome, **kwargs), "job end")

    def incr_attempts(self, job_id: str) -> int:
        return until_redis_answers(lambda: self._status.incr_attempts(job_id), "job attempts")

    def get(self, job_id: str) -> dict[str, Any] | None:
        return until_redis_answers(lambda: self._status.get(job_id), "job status")
