"""The benchmark's side of the queue: enqueue as the API does, wait as an ops script would."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

# `pipelines.broker` builds a broker from the environment when imported (and would start an
# embedded Valkey without REDIS_URL). The driver never uses that global broker: it talks to
# each benchmark's private Redis through its own `Client`. A placeholder keeps the import inert.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:9/0")

from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from pipelines.status import JobStatus
from pipelines.submit import submit_product_copy


@dataclass
class Outcomes:
    done: int
    failed: int
    errors: list[str]
    other: dict[str, int]


class Client:
    """A Dramatiq client of one bench's Redis: any program that knows actor names can be one."""

    def __init__(self, redis_url: str) -> None:
        self.redis = redis.Redis.from_url(redis_url)
        self.broker = RedisBroker(url=redis_url, middleware=[])
        self.status = JobStatus(self.redis)

    def submit_copy(self, store: str, product: dict[str, Any], options: dict[str, Any] | None = None) -> str:
        """Validate and enqueue one `product_copy` job, exactly as the API and CLI do."""
        return submit_product_copy(self.broker, self.status, store, product, options)

    def send(self, queue: str, actor: str, *args: Any) -> str:
        """Enqueue a bare message (no job status)."""
        message: Message[Any] = Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options={})
        self.broker.enqueue(message)
        return message.message_id

    def pending(self, queue: str) -> int:
        """Messages not yet acked on `queue` (queued, running, or waiting to retry)."""
        return int(self.broker.do_qsize(queue))

    def wait_drained(
        self,
        queue: str,
        *,
        timeout_s: float,
        interval_s: float = 0.01,
        on_tick: Callable[[int], None] | None = None,
    ) -> float:
        """Block until `queue` has nothing pending; returns the monotonic time it was seen empty."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = self.pending(queue)
            now = time.monotonic()
            if on_tick is not None:
                on_tick(left)
            if left == 0:
                return now
            if now > deadline:
                raise TimeoutError(f"{left} messages still pending on {queue!r} after {timeout_s}s")
            time.sleep(interval_s)

    def outcomes(self, job_ids: Iterable[str]) -> Outcomes:
        """How many jobs ended done or failed (the first few reasons), and what the rest say."""
        done = failed = 0
        errors: list[str] = []
        other: dict[str, int] = {}
        for status, error in self._statuses(job_ids, "status", "error"):
            if status == b"done":
                done += 1
            elif status == b"failed":
                failed += 1
                if len(errors) < 3 and error:
                    errors.append(error.decode()[:200])
            else:
                name = status.decode() if status else "missing"
                other[name] = other.get(name, 0) + 1
        return Outcomes(done, failed, errors, other)

    def run_times(self, job_ids: Iterable[str]) -> list[float]:
        """Seconds from each finished job's start to its end (its status's `started_at`, `finished_at`)."""
        rows = self._statuses(job_ids, "started_at", "finished_at")
        return [float(end) - float(begin) for begin, end in rows if begin and end]

    def _statuses(self, job_ids: Iterable[str], *fields: str) -> Iterator[list[Any]]:
        """`fields` of each job's status hash, in order; a thousand jobs a round trip."""
        ids = list(job_ids)
        for start in range(0, len(ids), 1000):
            pipe = self.redis.pipeline(transaction=False)
            for job_id in ids[start : start + 1000]:
                pipe.hmget(f"wandstore:job:{job_id}", list(fields))
            yield from pipe.execute()

    def flush(self) -> None:
        self.redis.flushdb()

    def close(self) -> None:
        self.broker.close()
        self.redis.close()
