"""The shared model budget (adapters/rate_limiter.py) against the test Redis: slots are booked, not polled."""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest

from tests.helpers import arun


def limiter(redis_server: Any, **options: Any) -> Any:
    """A limiter on its own Redis client, as another worker process would have."""
    from adapters.rate_limiter import ModelLimiter
    from adapters.redis_conn import AsyncRedis

    options.setdefault("interactive_share", 0.0)
    options.setdefault("burst_s", 0.05)
    return ModelLimiter(AsyncRedis(redis_server.url), **options)


async def slots(bookings: Iterable[Callable[[], Awaitable[Any]]]) -> list[float]:
    """When each booked call may start, in seconds from the first booking (its wait plus when it
    was booked): what the tests compare does not move with Redis round trips on a loaded machine."""
    start = time.monotonic()
    out = []
    for book in bookings:
        wait_s = (await book()).wait_s
        out.append(time.monotonic() - start + wait_s)
    return out


def test_two_clients_share_one_budget(redis_client: Any, redis_server: Any) -> None:
    from adapters.rate_limiter import Limit

    # Given two processes' limiters on one Redis and a budget of 600 requests a minute (one per 0.1 s)
    a, b = limiter(redis_server), limiter(redis_server)
    budget = Limit(rpm=600)

    def book(n: int) -> Callable[[], Awaitable[Any]]:
        return lambda: (a if n % 2 else b).reserve("openai/gpt-4o-mini", 10, budget)

    # When they book 20 calls between them
    waits = sorted(arun(slots(book(n) for n in range(20))))
    # Then the slots are spaced one interval apart across both: 20 calls take ~1.9 s, not 0
    gaps = [later - earlier for earlier, later in itertools.pairwise(waits)]
    assert waits[0] < 0.05
    assert all(0.09 <= g <= 0.11 for g in gaps[1:]), gaps
    assert 1.7 <= waits[-1] <= 1.95, waits[-1]


def test_the_token_budget_paces_big_calls(redis_client: Any, redis_server: Any) -> None:
    from adapters.rate_limiter import Limit

    # Given 6,000 tokens a minute (100 a second) and calls of 50 tokens
    lim = limiter(redis_server)

    def book() -> Awaitable[Any]:
        return lim.reserve("openai/m", 50, Limit(rpm=10_000, tpm=6000))

    # Then each call starts half a second after the one before (the token budget binds; the
    # bucket's 0.05 s of burst lets the second start that much early)
    waits = arun(slots(book for _ in range(5)))
    assert waits == pytest.approx([0.0, 0.45, 0.95, 1.45, 1.95], abs=0.03), waits


def test_the_interactive_lane_keeps_its_share(redis_client: Any, redis_server: Any) -> None:
    from adapters.rate_limiter import Limit

    # Given a fifth of 600 requests a minute kept for the interactive lane
    lim = limiter(redis_server, interactive_share=0.2)
    budget = Limit(rpm=600)

    async def run() -> tuple[list[float], float, float]:
        def batch_call() -> Awaitable[Any]:
            return lim.reserve("openai/m", 1, budget)

        def shopper_call() -> Awaitable[Any]:
            return lim.reserve("openai/m", 1, budget, interactive=True)

        # When a catalog run books 30 batch calls (the batch lane then runs at 8 a second), then a
        # shopper's personalization asks for a slot, then the batch lane books one more
        booked = await slots([*[batch_call] * 30, shopper_call, batch_call])
        return booked[:30], booked[30], booked[31]

    batch, shopper, after = arun(run())
    # Then batch calls are spaced for 80% of the budget, the shopper starts at once from its own
    # share, and the batch lane's queue is unchanged by it
    assert 3.5 <= batch[-1] <= 3.7, batch[-1]
    assert shopper < 0.5, shopper  # when it was booked: no wait behind the batch lane's 3.6 s
    assert after == pytest.approx(batch[-1] + 0.125, abs=0.01)


def test_an_idle_batch_lane_lends_its_slot_to_interactive_calls(redis_client: Any, redis_server: Any) -> None:
    from adapters.rate_limiter import Limit

    lim = limiter(redis_server, interactive_share=0.2, burst_s=0.01)
    budget = Limit(rpm=600)

    async def run() -> list[Any]:
        return [await lim.reserve("openai/m", 1, budget, interactive=True) for _ in range(2)]

    # When two interactive calls come at once: the first uses its lane, the second the idle batch lane
    first, second = arun(run())
    assert (first.lane, first.wait_s) == ("interactive", 0.0)
    assert (second.lane, second.wait_s) == ("batch", 0.0)


def test_no_slot_within_the_wait_books_nothing(redis_client: Any, redis_server: Any) -> None:
    from adapters.rate_limiter import Limit, NoSlot

    lim = limiter(redis_server)
    budget = Limit(rpm=60)  # one a second

    async def run() -> tuple[Any, Any]:
        await lim.reserve("openai/m", 1, budget)
        await lim.reserve("openai/m", 1, budget)  # booked 1 s ahead
        refused = await lim.reserve("openai/m", 1, budget, max_wait_s=0.5)
        again = await lim.reserve("openai/m", 1, budget)
        return refused, again

    refused, again = arun(run())
    # Then the refusal says when the next slot is, and did not take it
    assert not refused.ok and 1.9 <= refused.wait_s <= 2.0
    assert again.ok and 1.9 <= again.wait_s <= 2.0
    with pytest.raises(NoSlot, match="no slot"):
        arun(lim.acquire("openai/m", 1, budget, max_wait_s=0.1))


def test_a_429_and_the_providers_headers_correct_the_budget(redis_client: Any, redis_server: Any) -> None:
    from adapters.rate_limiter import Limit, RateHeaders

    lim = limiter(redis_server, burst_s=1.0)
    budget = Limit(rpm=600, tpm=60_000)

    async def run() -> tuple[float, float, float]:
        fresh = (await lim.reserve("openai/a", 1, budget)).wait_s
        # When the provider says no requests are left (another client of the same key used them)
        await lim.observe("openai/a", budget, RateHeaders(limit_requests=600, remaining_requests=0))
        corrected = (await lim.reserve("openai/a", 1, budget)).wait_s
        # When another model is answered 429 with retry-after: 2
        await lim.penalize("openai/b", 2.0)
        penalized = (await lim.reserve("openai/b", 1, budget)).wait_s
        return fresh, corrected, penalized

    fresh, corrected, penalized = arun(run())
    # Then the next call waits as the provider would make it (one interval: no room left, and our
    # bucket of 1 s had 9 calls of room), and the 429's retry-after
    assert fresh == 0.0
    assert 0.09 <= corrected <= 0.11, corrected
    assert 1.95 <= penalized <= 2.0, penalized


def test_provider_headers_are_read_in_both_spellings() -> None:
    from adapters.rate_limiter import parse_duration, parse_rate_headers

    openai = parse_rate_headers(
        {
            "llm_provider-x-ratelimit-limit-requests": "500",
            "llm_provider-x-ratelimit-remaining-requests": "499",
            "llm_provider-x-ratelimit-reset-tokens": "6m0s",
            "x-ratelimit-remaining-tokens": "199000",
        }
    )
    assert (openai.limit_requests, openai.remaining_requests) == (500, 499)
    assert (openai.remaining_tokens, openai.reset_tokens_s) == (199000, 360.0)
    anthropic = parse_rate_headers({"anthropic-ratelimit-tokens-remaining": "42"})
    assert anthropic.remaining_tokens == 42 and anthropic.remaining_requests is None
    assert [parse_duration(v) for v in ("20ms", "1.5s", "1m30s", "2", "soon")] == [0.02, 1.5, 90.0, 2.0, None]


def test_failures_mark_a_model_down_for_a_while(redis_client: Any, redis_server: Any) -> None:
    from adapters.rate_limiter import Limit

    lim = limiter(redis_server)

    async def run() -> tuple[list[bool], float, Any, Any]:
        marks = [await lim.note_failure("openai/m", after=3, window_s=5, down_s=30) for _ in range(3)]
        down = await lim.down_for("openai/m")
        checked = await lim.reserve("openai/m", 1, Limit(rpm=60), check_down=True)
        unchecked = await lim.reserve("openai/m", 1, Limit(rpm=60))
        return marks, down, checked, unchecked

    marks, down, checked, unchecked = arun(run())
    # Then the third failure marks it down; a caller with a fallback is told, others are paced as usual
    assert marks == [False, False, True]
    assert 29 <= down <= 30
    assert not checked.ok and checked.down_s > 29
    assert unchecked.ok and unchecked.wait_s == 0.0
