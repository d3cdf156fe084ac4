"""Small helpers shared by integration tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from dramatiq import Message

TERMINAL = ("done", "failed")
T = TypeVar("T")
_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def arun(coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
    """Run a coroutine on one long-lived loop, as the worker's event-loop thread does.

    (`asyncio.run` per call would close loops that litellm's background logger still holds.)
    """
    from dramatiq.asyncio import get_event_loop_thread

    global _loop
    with _lock:
        if _loop is None:
            worker_loop = get_event_loop_thread()
            if worker_loop is not None:
                _loop = worker_loop.loop
            else:
                _loop = asyncio.new_event_loop()
                threading.Thread(target=_loop.run_forever, daemon=True, name="test-loop").start()
    return asyncio.run_coroutine_threadsafe(coro, _loop).result(timeout_s)


def send_plain(broker: Any, actor: str, queue: str, *args: Any) -> str:
    """Enqueue like a foreign Dramatiq client: actor name, queue and JSON args only."""
    message: Message[Any] = Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options={})
    broker.enqueue(message)
    return message.message_id


def join_queue(client: Any, queue: str, timeout_s: float = 20.0) -> None:
    """Wait the way Dramatiq's own tests do: `broker.join(queue)`, on the Redis that holds the queue.

    It returns once the queue, its delay queue and every claimed-but-unacked message are gone,
    and a worker acks only after its middleware (the job's final status) has run.

    The `batch` queue is joined together with the fair lane in front of it (pipelines/fair.py):
    jobs still waiting in a store's list, or on their way onto the queue, are work too.
    """
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.errors import QueueJoinTimeout

    from pipelines.fair import FairQueue

    deadline = time.monotonic() + timeout_s
    lane = FairQueue(client) if queue == "batch" else None

    def lane_empty() -> bool:
        depth = lane.depth() if lane is not None else None
        return depth is None or (depth.total == 0 and depth.moving == 0)

    while True:
        # Empty before and after the join: nothing was on its way from the lane meanwhile.
        empty_before = lane_empty()
        left_ms = int((deadline - time.monotonic()) * 1000)
        try:
            RedisBroker(client=client, middleware=[]).join(queue, interval=20, timeout=max(left_ms, 1))
        except QueueJoinTimeout:
            raise AssertionError(f"queue {queue!r} still had work after {timeout_s}s") from None
        if empty_before and lane_empty():
            return
        depth = lane.depth() if lane is not None else None
        if time.monotonic() >= deadline:
            held = depth.total if depth is not None else 0
            raise AssertionError(f"the fair lane still held {held} jobs after {timeout_s}s")
        time.sleep(0.02)


def wait_job(status: Any, job_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
    """The job's final status, once its queue has been joined (inline jobs: once it has ended)."""
    queue = (status.get(job_id) or {}).get("queue")
    if queue != "inline":  # unknown until the worker starts it when a test enqueued it by hand
        for name in [queue] if queue else ["batch", "interactive"]:
            join_queue(status.r, name, timeout_s)
    else:  # an inline run (`run ...` commands): no queue to join
        deadline = time.monotonic() + timeout_s
        while (status.get(job_id) or {}).get("status") not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.02)
    info = status.get(job_id) or {}
    assert info.get("status") in TERMINAL, f"job {job_id} did not finish in {timeout_s}s: {info}"
    return dict(info)
