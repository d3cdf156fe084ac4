"""Redis commands for coroutines: off the event loop, and many to one round trip.

A worker runs hundreds of jobs on one event loop. A synchronous Redis call there stops every
job for a round trip (on a busy machine, a millisecond or more each), which capped one worker
at ~70 jobs/s with 256 calls in flight. `RedisBatcher.run` queues the call's commands and
awaits them; one thread sends whatever is queued as one pipeline (group commit) and hands each
caller its own replies. Each caller still gets its own result or exception.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

MAX_BATCH = 512


@dataclass
class _Op:
    script: Script
    keys: list[Any]
    args: list[Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any] = field(repr=False)


def _deliver(results: list[tuple[asyncio.Future[Any], Any, bool]]) -> None:
    for future, value, failed in results:
        if future.done():  # the caller was cancelled
            continue
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)


class RedisBatcher:
    """Lua scripts run for coroutines from one thread, pipelined; one per client and process."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def script(self, script: Script, keys: list[Any], args: list[Any]) -> Any:
        """`script(keys, args)`'s reply, sent with whatever other calls are waiting."""
        loop = asyncio.get_running_loop()
        op = _Op(script, keys, args, loop, loop.create_future())
        self._ensure_thread()
        self._queue.put(op)
        return await op.future

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="redis-batch", daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            ops = [self._queue.get()]
            while len(ops) < MAX_BATCH:
                try:
                    ops.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._run(ops)

    def _run(self, ops: list[_Op]) -> None:
        try:
            replies = self._send(ops)
        except Exception as exc:  # the whole round trip failed: every caller gets the error
            replies = [exc] * len(ops)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, bool]]] = {}
        for op, reply in zip(ops, replies, strict=True):
            by_loop.setdefault(op.loop, []).append((op.future, reply, isinstance(reply, Exception)))
        for loop, results in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, results)
            except RuntimeError:  # that event loop is closed: nobody is waiting any more
                continue

    def _send(self, ops: list[_Op]) -> list[Any]:
        replies = self._pipeline(ops)
        pairs = zip(ops, replies, strict=True)
        missing = {op.script for op, reply in pairs if isinstance(reply, NoScriptError)}
        if not missing:
            return replies
        # Redis restarted or was flushed: load the scripts and send those calls again.
        for script in missing:
            script.sha = self.client.script_load(script.script)
        again = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        for i, reply in zip(again, self._pipeline([ops[i] for i in again]), strict=True):
            replies[i] = reply
        return replies

    def _pipeline(self, ops: list[_Op]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for op in ops:
            # EVALSHA directly: redis-py's script-in-pipeline checks SCRIPT EXISTS on every send.
            pipe.evalsha(op.script.sha, len(op.keys), *op.keys, *op.args)
        return list(pipe.execute(raise_on_error=False))
