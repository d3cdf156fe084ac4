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


def wait_job(status: Any, job_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
    """Poll a job's status until it is done or failed (the worker runs in other threads)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = status.get(job_id)
        if info and info.get("status") in TERMINAL:
            return dict(info)
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s}s: {status.get(job_id)}")
