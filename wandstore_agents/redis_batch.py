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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from wandstore_agents import resp

MAX_BATCH = 512


@dataclass
class _Op:
    script: Script | None  # a Lua script (EVALSHA keys args), or None for a plain command
    keys: tuple[Any, ...]
    args: tuple[Any, ...]  # the command itself when `script` is None
    done: Callable[[Any, bool], None]  # called from the batch thread with (reply, failed)


def _deliver(results: list[tuple[asyncio.Future[Any], Any, bool]]) -> None:
    for future, value, failed in results:
        if future.done():  # the caller was cancelled
            continue
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)


class RedisBatcher:
    """Scripts and commands from any thread or event loop, pipelined from one thread."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Replies for one event loop are handed over in one call_soon_threadsafe per batch.
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, bool]]] = {}
        # Lean connections (hiredis' parser) where the client is plain TCP: the batch thread's
        # own, and a pool for threads that call directly.
        lean = resp.supports(client)
        self._pipe = resp.RespPipe(client) if lean else None
        self._pool = resp.RespPool(client) if lean else None
        # And for coroutines, one connection per event loop (resp.AsyncResp): a coroutine's
        # call costs no thread switch, and the calls of one loop iteration share a send.
        self._settings = resp.RespPipe(client) if lean else None
        self._loop_conns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, resp.AsyncResp] = (
            weakref.WeakKeyDictionary()
        )

    # --- coroutines ------------------------------------------------------------------

    async def script(self, script: Script, keys: list[Any], args: list[Any]) -> Any:
        """`script(keys, args)`'s reply, sent with whatever other calls are waiting."""
        return await self._await(script, tuple(keys), tuple(args))

    async def command(self, *command: Any) -> Any:
        """A plain command's reply (e.g. `await batch.command("GET", key)`)."""
        return await self._await(None, (), command)

    async def _await(self, script: Script | None, keys: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        loop = asyncio.get_running_loop()
        if self._settings is not None:
            return await self._on_loop(loop, _Op(script, keys, args, _ignore))
        future: asyncio.Future[Any] = loop.create_future()

        def done(reply: Any, failed: bool) -> None:
            self._pending.setdefault(loop, []).append((future, reply, failed))

        self._submit(_Op(script, keys, args, done))
        return await future

    async def _on_loop(self, loop: asyncio.AbstractEventLoop, op: _Op) -> Any:
        """The call on this event loop's own connection: no thread hop either way."""
        assert self._settings is not None
        conn = self._loop_conns.get(loop)
        if conn is None:
            conn = self._loop_conns[loop] = resp.AsyncResp(self._settings)
        reply = await conn.execute(_command(op))
        if isinstance(reply, NoScriptError) and op.script is not None:
            # Redis restarted or was flushed: load the script and send the call again.
            sha = await conn.execute(("SCRIPT", "LOAD", op.script.script))
            if isinstance(sha, Exception):
                raise sha
            op.script.sha = sha.decode() if isinstance(sha, bytes) else str(sha)
            reply = await conn.execute(_command(op))
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
        op = _Op(script, tuple(keys), tuple(args), _ignore)
        reply = self._pool.execute([_command(op)])[0]
        if isinstance(reply, NoScriptError):
            self._reload(script)
            reply = self._pool.execute([_command(op)])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    # --- the batch thread ------------------------------------------------------------

    def _submit(self, op: _Op) -> None:
        self._ensure_thread()
        self._queue.put(op)

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
        for op, reply in zip(ops, replies, strict=True):
            op.done(reply, isinstance(reply, Exception))
        pending, self._pending = self._pending, {}
        for loop, results in pending.items():
            try:
                loop.call_soon_threadsafe(_deliver, results)
            except RuntimeError:  # that event loop is closed: nobody is waiting any more
                continue

    def _send(self, ops: list[_Op]) -> list[Any]:
        replies = self._pipeline(ops)
        missing = {
            op.script for op, reply in zip(ops, replies, strict=True) if isinstance(reply, NoScriptError)
        }
        if not missing:
            return replies
        # Redis restarted or was flushed: load the scripts and send those calls again.
        for script in missing:
            if script is not None:
                self._reload(script)
        again = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        for i, reply in zip(again, self._pipeline([ops[i] for i in again]), strict=True):
            replies[i] = reply
        return replies

    def _reload(self, script: Script) -> None:
        script.sha = self.client.script_load(script.script)

    def _pipeline(self, ops: list[_Op]) -> list[Any]:
        if self._pipe is not None:
            return self._pipe.execute([_command(op) for op in ops])
        pipe = self.client.pipeline(transaction=False)
        for op in ops:
            if op.script is None:
                pipe.execute_command(*op.args)
            else:
                # EVALSHA directly: redis-py's script-in-pipeline checks SCRIPT EXISTS on every send.
                pipe.evalsha(op.script.sha, len(op.keys), *op.keys, *op.args)
        return list(pipe.execute(raise_on_error=False))


def _ignore(reply: Any, failed: bool) -> None:
    """`done` for an op the caller runs itself."""


def _command(op: _Op) -> tuple[Any, ...]:
    if op.script is None:
        return op.args
    return ("EVALSHA", op.script.sha, len(op.keys), *op.keys, *op.args)


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
