"""The health of Redis, the object store and the AI gateway, checked in the background and cached.

`/healthz` used to call the gateway and the store on every request, unauthenticated: 60 clients
polling it pushed authenticated requests from p50 3 ms to 4.2 s. Now one task checks every
API_HEALTH_INTERVAL_S, each check bounded by TIMEOUT_S, and `/healthz` answers from the last
result. A store check whose previous call is still stuck is not started again (it would only
pile up threads); it reports the store down until that call returns.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.errors import WandstoreError
from adapters.logs import get_logger
from adapters.redis_conn import AsyncRedis
from adapters.settings import Settings
from adapters.store import LocalStore, ObjectStore

TIMEOUT_S = 2.0
log = get_logger("api")


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    latency_ms: float


@dataclass(frozen=True)
class Report:
    checks: dict[str, Check]
    checked_at: float  # time.time()
    monotonic: float = field(repr=False)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks.values())


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


class HealthMonitor:
    """Checks in the background; `await report()` returns the latest result, never waiting on a dependency.

    Started by the app's lifespan, or by the first `/healthz` when the server runs without one.
    """

    def __init__(
        self, settings: Settings, aredis: AsyncRedis, store: ObjectStore, interval_s: float | None = None
    ) -> None:
        self.settings = settings
        self.aredis = aredis
        self.store = store
        self.interval_s = interval_s if interval_s is not None else settings.api_health_interval_s
        self.latest: Report | None = None
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Event | None = None
        self._store_call: Future[str] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="api-health")

    def start(self) -> None:
        """Start checking on the running loop (once)."""
        if self._task is None or self._task.done():
            self._first = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="api-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def report(self) -> Report:
        """The latest result; the very first request waits for the first round (at most TIMEOUT_S)."""
        self.start()
        if self.latest is None:
            assert self._first is not None
            await self._first.wait()
        assert self.latest is not None
        stale_after = 3 * self.interval_s + TIMEOUT_S
        age = time.monotonic() - self.latest.monotonic
        if age > stale_after:  # the checking task is stuck or dead: say so rather than repeat old news
            stalled = Check(False, f"no health check finished for {age:.0f}s", 0.0)
            return Report({"health_check": stalled, **self.latest.checks}, self.latest.checked_at, 0.0)
        return self.latest

    async def _loop(self) -> None:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as http:
            while True:
                try:
                    self.latest = await self.check(http)
                except Exception as exc:  # a bug here must not end the checks; it shows as down
                    log.error("health_check_failed", error=f"{type(exc).__name__}: {exc}")
                    failed = Check(False, f"{type(exc).__name__}", 0.0)
                    self.latest = Report({"health_check": failed}, time.time(), time.monotonic())
                assert self._first is not None
                self._first.set()
                await asyncio.sleep(self.interval_s)

    async def check(self, http: httpx.AsyncClient) -> Report:
        """One round: the three checks at once, each within TIMEOUT_S."""
        names = ("redis", "object_store", "gateway")
        results = await asyncio.gather(
            _timed(self._redis), _timed(self._store), _timed(lambda: self._gateway(http))
        )
        return Report(dict(zip(names, results, strict=True)), time.time(), time.monotonic())

    async def _redis(self) -> str:
        await self.aredis.client().ping()
        return "ping ok"

    async def _store(self) -> str:
        if self._store_call is not None and not self._store_call.done():
            raise TimeoutError("the previous check has not returned yet")
        self._store_call = self._executor.submit(self._store_probe)
        return await asyncio.wrap_future(self._store_call)

    def _store_probe(self) -> str:
        self.store.ping()
        if isinstance(self.store, LocalStore):
            # ping() writes an empty file, which succeeds on a disk too full for any output.
            free = shutil.disk_usage(self.store.root).free
            floor = self.settings.local_store_min_free_bytes
            if free < floor:
                raise OSError(
                    f"only {_mb(free)} free on LOCAL_STORE_DIR's disk, under LOCAL_STORE_MIN_FREE_BYTES "
                    f"({_mb(floor)})"
                )
            return f"local store ok, {_mb(free)} free"
        return f"{self.store.name} store ok"

    async def _gateway(self, http: httpx.AsyncClient) -> str:
        base_url = self.settings.gateway_base_url
        if base_url is None:
            return "embedded dev gateway: each worker serves its own, offline"
        # Any HTTP answer means reachable; the gateway checks auth per model call.
        response = await http.get(base_url)
        if response.status_code >= 500:
            raise httpx.HTTPError(f"gateway answered HTTP {response.status_code}")
        return f"reachable (HTTP {response.status_code})"


async def _timed(check: Callable[[], Awaitable[str]]) -> Check:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(TIMEOUT_S):
            detail, ok = await check(), True
    except TimeoutError as exc:
        detail, ok = str(exc) or f"no answer within {TIMEOUT_S:g}s", False
    except (redis.RedisError, WandstoreError, httpx.HTTPError, OSError) as exc:
        detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
    return Check(ok=ok, detail=detail, latency_ms=round((time.perf_counter() - started) * 1000, 2))


def public(report: Report) -> dict[str, Any]:
    """What anyone may see: up or down."""
    return {"status": "up" if report.ok else "down"}


_PUBLIC = {True: (200, b'{"status":"up"}'), False: (503, b'{"status":"down"}')}
# A 503 says when to look again: the background check runs about this often.
RETRY_AFTER_S = 5


class PublicHealthz:
    """`GET /healthz` without a token, answered before any other layer of the app.

    A flood of anonymous health checks should cost the API as little as one can: no routing,
    no dependencies, two pre-built messages. (With a token, the route answers, with details
    for the ops token.) Counted in the request metrics like any other request.
    """

    def __init__(self, app: ASGIApp, monitor: HealthMonitor, count: Callable[[int, float], None]) -> None:
        self.app = app
        self.monitor = monitor
        self.count = count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != "/healthz"
            or scope["method"] != "GET"
            or any(name == b"authorization" for name, _ in scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        report = await self.monitor.report()
        status, body = _PUBLIC[report.ok]
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if not report.ok:
            headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.count(status, time.perf_counter() - started)
