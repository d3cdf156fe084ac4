"""Pacing to provider limits and provider fallback, against the dev gateway enforcing RPM/TPM over HTTP.

Settings these tests change, on their own clients: the model budget (600 requests a minute),
MODEL_LIMIT_BURST_S (0.2 s), MODEL_LIMIT_INTERACTIVE_SHARE (0 or 0.2), MODEL_DOWN_AFTER (1).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from adapters.errors import RateLimited
from agents.gateway import CallResult, GatewayClient, GatewayConfig
from agents.schemas.product_copy import ProductCopy
from agents.usage import CallContext
from tests.conftest import sample_products
from tests.helpers import arun

MODEL = "openai/gpt-4o-mini"
FALLBACK = "anthropic/claude-haiku-4-5"
RPM = 600  # ten a second


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop.

    (The clients are not closed: litellm keeps the first aiohttp session it saw on a loop.)
    """


@pytest.fixture(autouse=True)
def _forget_the_limiter(redis_server: Any) -> Iterator[None]:
    """After each test: no rate budget booked and no model marked down in the session Redis.

    A model marked down (the fallback tests) is down fleet-wide for `MODEL_DOWN_S`: left
    behind, it would send the next tests' calls to the fallback model.
    """
    yield
    from adapters.rate_limiter import PREFIX

    client = redis.Redis.from_url(redis_server.url)
    try:
        keys = list(client.scan_iter(match=PREFIX + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def paced(gateway: Any, redis_server: Any, *, share: float = 0.0, **config: Any) -> GatewayClient:
    from adapters.rate_limiter import Limit, ModelLimiter
    from adapters.redis_conn import AsyncRedis

    limiter = ModelLimiter(
        AsyncRedis(redis_server.url), {MODEL: Limit(rpm=RPM)}, interactive_share=share, burst_s=0.2
    )
    return GatewayClient(GatewayConfig(base_url=gateway.base_url, **config), limiter=limiter)


async def one(gw: GatewayClient, n: int, *, model: str = MODEL, **kw: Any) -> CallResult:
    ctx = kw.pop("ctx", CallContext(store="stanley1913", pipeline="product_copy", job_id=f"job-{n}"))
    messages = [
        {"role": "system", "content": "You write product copy. Answer with one JSON object."},
        {"role": "user", "content": f"Product {n}: a 20 oz tumbler with a flip straw."},
    ]
    return await gw.complete(
        model=model,
        messages=messages,
        ctx=ctx,
        prompt_ref="product_copy@v1",
        response_model=ProductCopy,
        max_tokens=300,
        **kw,
    )


def test_a_burst_of_calls_runs_at_the_rpm_with_no_429(
    gateway: Any, redis_client: Any, redis_server: Any
) -> None:
    # Given a provider allowing 600 requests a minute (1 s of burst), and 30 calls started at once
    gateway.config(rate_limits={"gpt-4o-mini": {"rpm": RPM}}, burst_s=1.0)
    gw = paced(gateway, redis_server)
    arun(one(gw, 0, model="openai/gpt-4.1-mini"))  # litellm's first call (seconds of imports), unpaced

    async def burst() -> list[CallResult]:
        return await asyncio.gather(*(one(gw, n) for n in range(30)))

    # When they run through the paced client
    started = time.monotonic()
    results = arun(burst())
    took = time.monotonic() - started
    # Then every call succeeded with no 429, in about calls / RPM (3 s; 0.2 s of burst to start)
    stats = gateway.stats()
    assert len(results) == 30 and stats["model_calls"] >= 31
    assert stats["rate_limited"] == 0 and "429" not in stats["by_status"]
    assert 2.5 <= took <= 5.0, took
    assert {r.lane for r in results} == {"batch"}


def test_without_pacing_the_same_burst_is_answered_429(gateway: Any) -> None:
    # Given the same provider limit and a client that does not pace
    gateway.config(rate_limits={"gpt-4o-mini": {"rpm": RPM}}, burst_s=1.0)
    gw = GatewayClient(GatewayConfig(base_url=gateway.base_url))

    async def burst() -> list[Any]:
        return await asyncio.gather(*(one(gw, n) for n in range(30)), return_exceptions=True)

    # When 30 calls go at once
    results = arun(burst())
    # Then the provider's limit answers most of them 429, with its headers, and the rest pass
    limited = [r for r in results if isinstance(r, RateLimited)]
    passed = [r for r in results if isinstance(r, CallResult)]
    assert len(limited) >= 15 and len(passed) >= 5 and len(limited) + len(passed) == 30
    assert all(r.retry_after is not None and 0 < r.retry_after <= 3 for r in limited)
    assert any("x-ratelimit-remaining-requests" in str(k) for k in passed[0].rate_headers)


def test_the_interactive_lane_is_not_queued_behind_a_catalog_run(
    gateway: Any, redis_client: Any, redis_server: Any
) -> None:
    # Given a fifth of the budget kept for the interactive lane, and 24 batch calls queued (3 s at 8/s)
    gateway.config(rate_limits={"gpt-4o-mini": {"rpm": RPM}}, burst_s=1.0)
    gw = paced(gateway, redis_server, share=0.2)
    shopper = CallContext(
        store="stanley1913",
        pipeline="personalize",
        job_id="p-1",
        lane="interactive",
        deadline=time.time() + 2,
    )

    async def run() -> tuple[float, float]:
        started = time.monotonic()
        batch = asyncio.gather(*(one(gw, n) for n in range(24)))
        await asyncio.sleep(0.3)
        # When a shopper's personalization call comes while the catalog run waits for its slots
        asked = time.monotonic()
        await one(gw, 100, ctx=shopper)
        interactive_s = time.monotonic() - asked
        await batch
        return interactive_s, time.monotonic() - started

    interactive_s, batch_s = arun(run())
    # Then it is served at once from its own share, and the catalog run takes its 80%
    assert interactive_s < 0.5, interactive_s
    assert batch_s >= 2.5, batch_s
    assert gateway.stats()["rate_limited"] == 0


def test_a_rate_limit_past_the_deadline_goes_to_the_fallback(
    gateway: Any, redis_client: Any, redis_server: Any
) -> None:
    # Given the primary's budget booked far ahead, and a call that may wait 0.5 s at most
    gw = paced(gateway, redis_server)
    ctx = CallContext(store="stanley1913", pipeline="personalize", job_id="p-2", deadline=time.time() + 0.7)

    async def run() -> CallResult:
        from adapters.rate_limiter import Limit

        assert gw.limiter is not None
        for _ in range(20):  # 2 s of the budget
            await gw.limiter.reserve(MODEL, 1, Limit(rpm=RPM))
        return await one(gw, 1, ctx=ctx, fallback_model=FALLBACK)

    result = arun(run())
    # Then the fallback model served it, and says so
    assert result.model == FALLBACK and result.fallback_from == MODEL
    assert gateway.stats()["by_model"] == {"claude-haiku-4-5": 1}


def test_a_provider_down_is_left_for_the_fallback(gateway: Any, redis_client: Any, redis_server: Any) -> None:
    # Given OpenAI down, and a client that marks a model down at its first 5xx (MODEL_DOWN_AFTER=1)
    gateway.config(down=["openai"])
    gw = paced(gateway, redis_server, down_after=1)

    async def two() -> list[CallResult]:
        return [await one(gw, 1, fallback_model=FALLBACK), await one(gw, 2, fallback_model=FALLBACK)]

    first, second = arun(two())
    # Then both calls were served by the fallback on Anthropic; the second went there directly
    assert [r.model for r in (first, second)] == [FALLBACK, FALLBACK]
    assert first.fallback_from == MODEL and second.fallback_from == MODEL
    stats = gateway.stats()
    assert stats["requests"] == 3 and stats["by_status"]["503"] == 1


def test_product_copy_on_the_fallback_says_so_in_meta_and_usage(
    services: Any, gateway: Any, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.ledger import Ledger
    from pipelines.product_copy import generate_product_copy

    # Given OpenAI down and the product-copy prompt naming a fallback on Anthropic
    gateway.config(down=["openai"])
    gw = paced(gateway, redis_server, down_after=1)
    monkeypatch.setattr(services.runtime, "gateway", gw)
    product = sample_products("stanley1913")[3]
    # When copy is written
    published = arun(generate_product_copy(services, "stanley1913", product, job_id="fb-1"))
    # Then the output's meta names the model that wrote it, and the ledger counts the call under it
    meta = services.store.get(published.key).json()["meta"]
    assert meta["model"] == MODEL and meta["model_served"] == FALLBACK and meta["model_fallback"] is True
    calls = {
        c.model: c.value for c in Ledger(services.redis).scan(store="stanley1913") if c.metric == "calls"
    }
    assert calls == {FALLBACK: 1}
