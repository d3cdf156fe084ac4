"""The project's one retry policy (adapters/retry.py): waits, Retry-After, stops. No test sleeps."""

from __future__ import annotations

import asyncio
import itertools
from email.utils import formatdate
from typing import Any

import pytest

from adapters import retry
from adapters.errors import RetryableError


class FakeClock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    @property
    def injected(self) -> dict[str, Any]:
        return {"sleep": self.sleep, "clock": self}


class Flaky:
    """Fails with `error` `failures` times, then answers "ok"."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_backoff_doubles_from_the_base_with_up_to_a_quarter_more() -> None:
    for attempt, exponential in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6)]:
        waits = [retry.backoff_s(attempt, 0.2, 60) for _ in range(200)]
        assert all(exponential <= w <= exponential * 1.25 for w in waits)
        assert len(set(waits)) > 1  # jittered, so retries that failed together spread out


def test_backoff_stops_growing_at_the_cap_even_after_many_attempts() -> None:
    waits = [retry.backoff_s(attempt, 1.0, 10.0) for attempt in (5, 50, 5000)]
    assert all(10.0 <= w <= 12.5 for w in waits)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    # A receiver asking for longer than the backoff gets it (plus a little spread) ...
    assert 30.0 <= retry.backoff_s(1, 1.0, 600, retry_after_s=30) <= 30.0 + retry.RETRY_AFTER_SPREAD_S
    # ... a shorter Retry-After never shortens the backoff ...
    assert retry.backoff_s(4, 1.0, 600, retry_after_s=0.5) >= 8.0
    # ... and nobody is made to wait past the cap's reach.
    assert retry.backoff_s(1, 0.2, 5.0, retry_after_s=3600) <= 5.0 + retry.RETRY_AFTER_SPREAD_S


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), (" 1.5 ", 1.5), ("-3", 0.0), (None, None), ("soon", None), ("nan", None)],
)
def test_retry_after_header_in_seconds(header: str | None, expected: float | None) -> None:
    assert retry.retry_after_s(header) == expected


def test_retry_after_header_as_an_http_date() -> None:
    now = 1_800_000_000.0
    assert retry.retry_after_s(formatdate(now + 90, usegmt=True), now=now) == 90.0
    assert retry.retry_after_s(formatdate(now - 90, usegmt=True), now=now) == 0.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),  # milliseconds win (OpenAI sends both)
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),  # a garbled one falls back to seconds
        ({"retry-after": "9"}, 9.0),
        ({"retry-after-ms": "-20"}, 0.0),
        ({"content-type": "application/json"}, None),
        ({}, None),
    ],
)
def test_retry_after_from_a_responses_headers(headers: dict[str, str], expected: float | None) -> None:
    assert retry.retry_after_s(headers) == expected


def test_retry_after_from_headers_that_ignore_case() -> None:
    import httpx

    assert retry.retry_after_s(httpx.Headers({"Retry-After-Ms": "250"})) == 0.25
    now = 1_800_000_000.0
    assert retry.retry_after_s(httpx.Headers({"Retry-After": formatdate(now + 30, usegmt=True)}), now) == 30.0


def test_call_retries_the_named_errors_until_it_answers() -> None:
    # Given a function that fails twice with a connection error
    clock, fn = FakeClock(), Flaky(2, ConnectionError("down"))
    # When it is called under the policy
    got = retry.call(fn, on=ConnectionError, base_s=0.05, cap_s=1.0, attempts=5, **clock.injected)
    # Then it answered on the third call, after two growing waits
    assert (got, fn.calls) == ("ok", 3)
    assert 0.05 <= clock.slept[0] <= 0.0625 and 0.1 <= clock.slept[1] <= 0.125


def test_other_errors_are_raised_at_once() -> None:
    clock, fn = FakeClock(), Flaky(1, KeyError("bug"))
    with pytest.raises(KeyError):
        retry.call(fn, on=ConnectionError, base_s=0.05, cap_s=1.0, attempts=5, **clock.injected)
    assert (fn.calls, clock.slept) == (1, [])


def test_after_the_last_attempt_the_last_error_is_raised_as_it_was() -> None:
    clock, error = FakeClock(), ConnectionError("still down")
    fn = Flaky(10, error)
    with pytest.raises(ConnectionError) as raised:
        retry.call(fn, on=ConnectionError, base_s=0.05, cap_s=1.0, attempts=3, **clock.injected)
    assert raised.value is error and fn.calls == 3 and len(clock.slept) == 2


def test_give_up_before_a_wait_that_would_end_past_the_deadline() -> None:
    # Given Redis down for good, and 2 s to wait it out (waits 50 ms doubling to a 1 s cap)
    clock, fn = FakeClock(), Flaky(100, ConnectionError("down"))
    with pytest.raises(ConnectionError):
        retry.call(fn, on=ConnectionError, base_s=0.05, cap_s=1.0, give_up_s=2.0, **clock.injected)
    # Then every wait ended within the deadline, and the next one would have crossed it
    assert sum(clock.slept) <= 2.0
    assert len(clock.slept) >= 4 and fn.calls == len(clock.slept) + 1


def test_a_retryable_errors_retry_after_is_waited_out() -> None:
    clock = FakeClock()
    fn = Flaky(1, RetryableError("rate limited", retry_after=7.0))
    assert retry.call(fn, on=RetryableError, base_s=0.1, cap_s=60, attempts=2, **clock.injected)
    assert 7.0 <= clock.slept[0] <= 7.0 + retry.RETRY_AFTER_SPREAD_S


def test_before_sleep_sees_each_failure() -> None:
    clock, fn, seen = FakeClock(), Flaky(2, ConnectionError("down")), []
    retry.call(
        fn,
        on=ConnectionError,
        base_s=0.05,
        cap_s=1.0,
        attempts=5,
        before_sleep=lambda state: seen.append(state.attempt_number),
        **clock.injected,
    )
    assert seen == [1, 2]


def test_a_policy_without_a_stop_is_refused() -> None:
    with pytest.raises(ValueError, match="when to stop"):
        retry.call(lambda: "ok", on=ConnectionError, base_s=0.05, cap_s=1.0)


def test_acall_awaits_its_waits() -> None:
    clock, calls = FakeClock(), []

    async def fn() -> str:
        calls.append(clock.now)
        if len(calls) < 3:
            raise TimeoutError
        return "ok"

    got = asyncio.run(
        retry.acall(fn, on=TimeoutError, base_s=0.2, cap_s=5.0, attempts=3, sleep=clock.asleep, clock=clock)
    )
    assert got == "ok" and len(clock.slept) == 2
    assert [b - a for a, b in itertools.pairwise(calls)] == pytest.approx(clock.slept)
