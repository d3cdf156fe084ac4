"""Each blocking dependency of the API gets its own threads, a timeout and a circuit breaker.

Measured before this existed: every sync route, the token check and the rate limiter shared
AnyIO's one pool of 40 threads, and `store.get` held a thread for up to R2_TIMEOUT_S (30 s).
With R2 hanging, 45 output reads took every thread, and another store's `POST .../generations`
(which never touches R2) went from p50 3 ms to 28.7 s. Now a hanging R2 holds at most its own
`size` threads; a request waits for it at most `timeout_s`, then gets a 503 with Retry-After;
and after `threshold` failures in a row the breaker answers 503 at once, without a thread,
until a probe call succeeds.

A thread stuck in a call cannot be interrupted. It keeps its slot until the call returns, so
the number of threads a dead dependency can hold is `size`, never more.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import dramatiq.errors
import redis

from adapters.errors import AlreadyExists, BrokerUnavailable, NotFound, StoreError
from adapters.logs import get_logger
from adapters.settings import Settings
from entrypoints.api.errors import ApiError

T = TypeVar("T")
log = get_logger("api")


class Unavailable(ApiError):
    """503: a dependency is failing, saturated or too slow; the client should retry after a while."""

    def __init__(self, code: str, message: str, retry_after_s: float) -> None:
        retry = max(1, math.ceil(retry_after_s))
        super().__init__(503, code, f"{message}; retry after {retry}s", headers={"Retry-After": str(retry)})


class Breaker:
    """Closed until `threshold` failures in a row; then open for `reset_s`; then one probe at a time."""

    def __init__(self, threshold: int = 5, reset_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.reset_s = reset_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self.opened_at is None:
                return "closed"
            return "half-open" if self.clock() - self.opened_at >= self.reset_s else "open"

    def admit(self) -> float | None:
        """None when a call may go ahead, else the seconds until the breaker lets one through."""
        with self._lock:
            if self.opened_at is None:
                return None
            wait = self.opened_at + self.reset_s - self.clock()
            if wait > 0:
                return wait
            if self.probing:  # half-open: one probe at a time, the rest are refused
                return self.reset_s
            self.probing = True
            return None

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at, self.probing = 0, None, False

    def failure(self) -> bool:
        """Count a failure; True when it opened (or re-opened) the breaker."""
        with self._lock:
            self.failures += 1
            if self.probing or self.failures >= self.threshold:
                self.opened_at, self.probing = self.clock(), False
                return True
            return False


@dataclass(frozen=True)
class Spec:
    """How one dependency is called: its threads, its queue, its timeout and what counts as failing."""

    name: str  # "store", "redis", ... : thread names and log lines
    size: int
    queue: int  # calls that may wait for a thread; more are refused at once
    timeout_s: float | None  # None: the request waits as long as the call takes
    code: str  # the 503's error code
    what: str  # "the object store": messages
    # Which errors mean the dependency is failing (a timeout always does); others mean it answered.
    failing: Callable[[BaseException], bool] = lambda exc: False
    breaker: bool = True


@dataclass
class _Call:
    timed_out: bool = False


class Bulkhead:
    """A dependency's own bounded thread pool; `await run(fn, ...)` calls `fn` there."""

    def __init__(self, spec: Spec, breaker: Breaker | None = None) -> None:
        self.spec = spec
        self.breaker = breaker if breaker is not None else (Breaker() if spec.breaker else None)
        self._executor = ThreadPoolExecutor(spec.size, thread_name_prefix=f"api-{spec.name}")
        self._admitted = 0  # calls queued or running; a call abandoned on timeout still counts
        self._lock = threading.Lock()

    @property
    def busy(self) -> int:
        with self._lock:
            return self._admitted

    async def run(self, fn: Callable[..., T], *args: Any, abandon: bool = True) -> T:
        """`fn(*args)` on this dependency's threads; 503 when it is busy, failing or (if `abandon`) slow.

        `abandon=False` is for calls with side effects (enqueueing a job, moving a theme pointer):
        the request waits for the outcome, however long the dependency's own timeout lets it
        take, so a 503 never hides work that was in fact done (a client would retry it twice).
        """
        spec = self.spec
        with self._lock:
            full = self._admitted >= spec.size + spec.queue
            if not full:
                self._admitted += 1
        if full:
            raise Unavailable(spec.code, f"{spec.what} is busy ({spec.size} calls in flight)", 1)
        if self.breaker is not None and (wait := self.breaker.admit()) is not None:
            with self._lock:
                self._admitted -= 1
            raise Unavailable(spec.code, f"{spec.what} is failing; calls to it are paused", wait)
        call = _Call()
        context = contextvars.copy_context()  # the request's log context follows it into the thread
        future = self._executor.submit(context.run, fn, *args)
        future.add_done_callback(lambda f: self._done(call, f))
        waiter = asyncio.wrap_future(future)
        # Whoever stops waiting, the outcome is retrieved, so no "exception never retrieved".
        waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
        if spec.timeout_s is None or not abandon:
            return await waiter
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), spec.timeout_s)
        except TimeoutError:
            call.timed_out = True
            future.cancel()  # still queued: it never starts; running: it finishes on its own
            self._settle(failed=True)
            log.warning("api_dependency_timeout", dependency=spec.name, timeout_s=spec.timeout_s)
            raise Unavailable(
                spec.code, f"{spec.what} did not answer within {spec.timeout_s:g}s", self._retry_after()
            ) from None

    def _done(self, call: _Call, future: Future[Any]) -> None:
        """In the thread, when the call returns: free its slot, tell the breaker how it went."""
        with self._lock:
            self._admitted -= 1
        if call.timed_out or future.cancelled():
            return  # already counted as a failure when the request stopped waiting
        error = future.exception()
        self._settle(failed=error is not None and self.spec.failing(error))

    def _settle(self, *, failed: bool) -> None:
        if self.breaker is None:
            return
        if not failed:
            self.breaker.success()
        elif self.breaker.failure():
            log.error("api_breaker_open", dependency=self.spec.name, reset_s=self.breaker.reset_s)

    def _retry_after(self) -> float:
        return self.breaker.reset_s if self.breaker is not None else 1.0

    def close(self) -> None:
        """Let idle threads go; threads stuck in a call end when it returns."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _store_failing(exc: BaseException) -> bool:
    # NotFound and a lost compare-and-swap are answers; anything else from the store is it failing.
    return isinstance(exc, StoreError) and not isinstance(exc, NotFound | AlreadyExists)


def _redis_failing(exc: BaseException) -> bool:
    return isinstance(exc, BrokerUnavailable | redis.RedisError | dramatiq.errors.ConnectionError)


@dataclass
class Pools:
    """The API's bulkheads, one per kind of blocking work (the event loop runs no blocking call)."""

    store: Bulkhead  # the object store (R2 or the local folder): outputs, themes, exports, snapshots
    redis: Bulkhead  # sync Redis work: enqueueing jobs, job statuses, batches, costs
    batch: Bulkhead  # catalog-copy submissions (a minute for 20,000 products): few, never timed out
    parse: Bulkhead  # large JSON bodies and their fingerprints (CPU)
    metrics: Bulkhead  # /metrics scrapes (Redis, unauthenticated): one at a time

    @classmethod
    def from_settings(cls, settings: Settings) -> Pools:
        store_size = settings.api_store_concurrency
        redis_s = settings.api_redis_timeout_s
        return cls(
            store=Bulkhead(
                Spec(
                    "store",
                    store_size,
                    4 * store_size,
                    settings.api_store_timeout_s,
                    "store_error",
                    "the object store",
                    _store_failing,
                )
            ),
            redis=Bulkhead(Spec("redis", 32, 256, redis_s, "unavailable", "Redis", _redis_failing)),
            batch=Bulkhead(Spec("batch", 4, 8, None, "busy", "batch submission", breaker=False)),
            parse=Bulkhead(Spec("parse", 2, 32, None, "busy", "the body parser", breaker=False)),
            metrics=Bulkhead(
                Spec("metrics", 1, 4, redis_s, "unavailable", "the metrics scrape", breaker=False)
            ),
        )

    def close(self) -> None:
        for pool in (self.store, self.redis, self.batch, self.parse, self.metrics):
            pool.close()


@contextlib.asynccontextmanager
async def redis_deadline(seconds: float, what: str) -> AsyncIterator[None]:
    """Bound the asyncio Redis calls in the block; a hanging Redis becomes `BrokerUnavailable` (503)."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise BrokerUnavailable(f"Redis did not answer {what} within {seconds:g}s") from None
