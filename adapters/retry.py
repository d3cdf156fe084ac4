"""The project's one retry policy, on tenacity: how long to wait between attempts, and until when.

What it offers (use these rather than a loop of your own):

- `backoff_s(attempt, base_s, cap_s, retry_after_s=None)`: the wait after the `attempt`-th
  failure (1-based): `base_s` doubling per attempt up to `cap_s`, plus up to a quarter more
  at random; never shorter than a server's Retry-After (itself honoured up to `cap_s`).
  For retries someone else schedules, e.g. `dramatiq.Retry(delay=...)`.
- `honour(retry_after_s)`: what a server asked for, plus up to 250 ms at random.
- `retry_after_s(header)`: an HTTP `Retry-After` (seconds or an HTTP date) in seconds, or None;
  given a response's headers, `retry-after-ms` first.
- `call(fn, on=..., base_s=, cap_s=, attempts=, give_up_s=)` and its coroutine twin `acall`:
  run `fn` until it returns, retrying the exception types `on` with `backoff_s` waits, until
  `attempts` tries or until the next wait would end past `give_up_s` from the start; then the
  last exception is raised as it was. An exception with a `retry_after` attribute (every
  `RetryableError`) is waited out at least that long. `before_sleep` sees tenacity's
  `RetryCallState`; `sleep` and `clock` can be injected (tests run without sleeping). The
  first try runs bare: only a failure pays for tenacity's bookkeeping (~60 µs a call).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception_type

T = TypeVar("T")
Errors = type[BaseException] | tuple[type[BaseException], ...]
RETRY_AFTER_SPREAD_S = 0.25  # so the callers a server told "come back in N s" don't all come back at once


def backoff_s(attempt: int, base_s: float, cap_s: float, retry_after_s: float | None = None) -> float:
    """The wait after the `attempt`-th failure (1-based); see the module's docstring."""
    exponential = min(base_s * 2.0 ** min(attempt - 1, 64), cap_s)
    wait = exponential * random.uniform(1.0, 1.25)
    if retry_after_s is not None:
        wait = max(wait, honour(min(retry_after_s, cap_s)))
    return wait


def honour(retry_after_s: float) -> float:
    """Wait what the server asked for, plus up to `RETRY_AFTER_SPREAD_S` at random."""
    return max(0.0, retry_after_s) + random.uniform(0, RETRY_AFTER_SPREAD_S)


def retry_after_s(value: str | Mapping[str, Any] | None, now: float | None = None) -> float | None:
    """An HTTP `Retry-After` in seconds from `now` (default: the clock); None if absent or garbled.

    `value` is the header's value (seconds or an HTTP date), or a response's headers: then
    `retry-after-ms` (milliseconds, as OpenAI sends it) wins over `retry-after`.
    """
    if isinstance(value, Mapping):
        ms = _number(value.get("retry-after-ms"))
        if ms is not None:
            return max(0.0, ms / 1000)
        value = value.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is None:
        try:
            when = parsedate_to_datetime(str(value).strip())
        except (TypeError, ValueError):
            return None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)  # "-0000": GMT, as HTTP dates are
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _check_stop(attempts: int | None, give_up_s: float | None) -> None:
    if attempts is None and give_up_s is None:
        raise ValueError("say when to stop retrying: pass attempts=, give_up_s= or both")


def _policy(
    on: Errors,
    base_s: float,
    cap_s: float,
    attempts: int | None,
    give_up_s: float | None,
    before_sleep: Callable[[RetryCallState], None] | None,
    clock: Callable[[], float],
    started: float,
) -> dict[str, Any]:
    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return backoff_s(state.attempt_number, base_s, cap_s, getattr(error, "retry_after", None))

    deadline = started + give_up_s if give_up_s is not None else math.inf

    def stop(state: RetryCallState) -> bool:
        # Evaluated after `wait`: give up rather than wake up past the deadline.
        tried = attempts is not None and state.attempt_number >= attempts
        return tried or clock() + state.upcoming_sleep > deadline

    return {"retry": retry_if_exception_type(on), "wait": wait, "stop": stop, "before_sleep": before_sleep}


def call(
    fn: Callable[[], T],
    *,
    on: Errors,
    base_s: float,
    cap_s: float,
    attempts: int | None = None,
    give_up_s: float | None = None,
    before_sleep: Callable[[RetryCallState], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `fn`, retrying the errors `on` by the project's policy; see the module's docstring."""
    _check_stop(attempts, give_up_s)
    started = clock()
    try:
        return fn()
    except on as exc:
        failed = [exc]
    # The policy is built only once a try has failed: most calls succeed at the first.
    policy = _policy(on, base_s, cap_s, attempts, give_up_s, before_sleep, clock, started)

    def again() -> T:  # tenacity takes over from the failed try: its first attempt replays it
        if failed:
            raise failed.pop()
        return fn()

    return Retrying(sleep=sleep, reraise=True, **policy)(again)


async def acall(
    fn: Callable[[], Awaitable[T]],
    *,
    on: Errors,
    base_s: float,
    cap_s: float,
    attempts: int | None = None,
    give_up_s: float | None = None,
    before_sleep: Callable[[RetryCallState], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`call` for coroutines: the waits are awaited, not slept."""
    _check_stop(attempts, give_up_s)
    started = clock()
    try:
        return await fn()
    except on as exc:
        failed = [exc]
    policy = _policy(on, base_s, cap_s, attempts, give_up_s, before_sleep, clock, started)

    async def again() -> T:
        if failed:
            raise failed.pop()
        return await fn()

    result: T = await AsyncRetrying(sleep=sleep, reraise=True, **policy)(again)
    return result


__all__ = ["RetryCallState", "acall", "backoff_s", "call", "honour", "retry_after_s"]
