"""Redis commands for coroutines and threads, without stalling the event loop or paying redis-py.

A worker runs hundreds of jobs on one event loop and as many Dramatiq threads. A synchronous
Redis call on the loop stops every job for a round trip, and each call anywhere costs ~100 us
of the process's one GIL in redis-py. So, where the client talks plain TCP:

- coroutines (`await batch.script(...)`, `await batch.command(...)`) call on their event
  loop's own connection (`resp.AsyncResp`): the calls of one loop iteration go out in one
  send (group commit) and each reply comes back to its caller with no thread in between;
- threads, which block anyway, call `batch.script_sync(...)` on pooled connections of their
  own (`resp.RespPool`).

Both parse with hiredis (~10 us a command). For TLS and unix-socket clients, coroutines'
calls go to one batch thread that sends whatever is queued as one redis-py pipeline and
hands each caller its own reply or exception. One batcher per client and process
(`batcher_for`).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from adapters import resp

MAX_BATCH = 512


@dataclass
class _Op:
    """A coroutine's call waiting for the batch thread (TLS and unix-socket clients only)."""

    command: tuple[Any, ...]
    script: Script | None  # reloaded if Redis answers NOSCRIPT
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any] = field(repr=False)


def _deliver(results: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, value in results:
        if future.done():  # the caller was cancelled
            continue
        if isinstance(value, Exception):
            future.set_exception(value)
        else:
            future.set_result(value)


class RedisBatcher:
    """Redis calls for coroutines and threads on lean connections; a batch thread where they can't go."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        # Plain TCP: hiredis-parsed connections, a pool for threads and one per event loop.
        self._endpoint = resp.Endpoint.of(client) if resp.supports(client) else None
        self._pool = resp.RespPool(self._endpoint) if self._endpoint else None
        self._loop_conns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, resp.AsyncResp] = (
            weakref.WeakKeyDictionary()
        )
        # Otherwise coroutines' calls go to one thread that sends them as redis-py pipelines.
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- coroutines ------------------------------------------------------------------

    async def script(self, script: Script, keys: list[Any], args: list[Any]) -> Any:
        """`script(keys, args)`'s reply, sent with whatever other calls are waiting."""
        return await self._await(_evalsha(script, keys, args), script)

    async def command(self, *command: Any) -> Any:
        """A plain command's reply (e.g. `await batch.command("GET", key)`)."""
        return await self._await(command, None)

    async def _await(self, command: tuple[Any, ...], script: Script | None) -> Any:
        loop = asyncio.get_running_loop()
        if self._endpoint is None:
            op = _Op(command, script, loop, loop.create_future())
            self._ensure_thread()
            self._queue.put(op)
            return await op.future
        # On this event loop's own connection: no thread hop either way.
        conn = self._loop_conns.get(loop)
        if conn is None:
            conn = self._loop_conns[loop] = resp.AsyncResp(self._endpoint)
        reply = await conn.execute(command)
        if isinstance(reply, NoScriptError) and script is not None:
            # Redis restarted or was flushed: load the script and send the call again.
            sha = await conn.execute(("SCRIPT", "LOAD", script.script))
            if isinstance(sha, Exception):
                raise sha
            script.sha = sha.decode() if isinstance(sha, bytes) else str(sha)
            reply = await conn.execute(_with_sha(script, command))
        if isinstance(reply, Exception):
            raise reply
        return reply

    # --- threads ---------------------------------------------------------------------

    def script_sync(self, script: Script, keys: list[Any], args: list[Any]) -> Any:
        """`script(keys, args)`'s reply, sent from the calling thread on a pooled connection.

        Threads (Dramatiq's, one per running job) block anyway: a hop to the batch thread
        would only add two thread switches to their latency.
        """
        if self._pool is None:
            return script(keys=keys, args=args, client=self.client)
        reply = self._pool.execute([_evalsha(script, keys, args)])[0]
        if isinstance(reply, NoScriptError):
            self._reload(script)
            reply = self._pool.execute([_evalsha(script, keys, args)])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    # --- the batch thread (TLS and unix-socket clients) ------------------------------

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
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for op, reply in zip(ops, replies, strict=True):
            by_loop.setdefault(op.loop, []).append((op.future, reply))
        for loop, results in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, results)
            except RuntimeError:  # that event loop is closed: nobody is waiting any more
                continue

    def _send(self, ops: list[_Op]) -> list[Any]:
        replies = self._pipeline(ops)
        again = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if not again:
            return replies
        # Redis restarted or was flushed: load the scripts and send those calls again.
        for script in {ops[i].script for i in again}:
            if script is not None:
                self._reload(script)
        retried = [
            _Op(_with_sha(op.script, op.command), op.script, op.loop, op.future)
            for op in (ops[i] for i in again)
        ]
        for i, reply in zip(again, self._pipeline(retried), strict=True):
            replies[i] = reply
        return replies

    def _reload(self, script: Script) -> None:
        script.sha = self.client.script_load(script.script)

    def _pipeline(self, ops: list[_Op]) -> list[Any]:
        # EVALSHA as a plain command: redis-py's script-in-pipeline checks SCRIPT EXISTS on every send.
        pipe = self.client.pipeline(transaction=False)
        for op in ops:
            pipe.execute_command(*op.command)
        return list(pipe.execute(raise_on_error=False))


def _evalsha(script: Script, keys: Sequence[Any], args: Sequence[Any]) -> tuple[Any, ...]:
    return ("EVALSHA", script.sha, len(keys), *keys, *args)


def _with_sha(script: Script | None, command: tuple[Any, ...]) -> tuple[Any, ...]:
    """An EVALSHA `command` again, with its script's current sha (after a reload)."""
    if script is None:
        return command
    return ("EVALSHA", script.sha, *command[2:])


_batchers: dict[int, RedisBatcher] = {}
_batchers_lock = threading.Lock()


def batcher_for(client: redis.Redis) -> RedisBatcher:
    """The process's batcher for `client` (one thread per client, shared by every caller)."""
    found = _batchers.get(id(client))
    if found is None or found.client is not client:
        with _batchers_lock:
            found = _batchers.get(id(client))
            if found is None or found.client is not client:
                found = _batchers[id(client)] = RedisBatcher(client)
    return found
