"""The result cache: identical generations are reused, computed once across callers and processes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.conftest import sample_products
from tests.helpers import arun


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def test_ten_concurrent_identical_requests_make_one_model_call(services: Any, gateway: Any) -> None:
    from pipelines.product_copy import generate_product_copy

    # Given ten identical requests for one product, at once
    product = sample_products("stanley1913")[6]

    async def ten() -> list[Any]:
        return await asyncio.gather(
            *(generate_product_copy(services, "stanley1913", product) for _ in range(10))
        )

    # When they run
    results = arun(ten())
    # Then the model was called once; the other nine were served that output at no cost
    assert gateway.stats()["model_calls"] == 1
    served = sorted(r.meta["served"] for r in results)
    assert served == ["fresh"] + ["result_cache"] * 9
    assert {r.cost_usd for r in results if r.meta["served"] == "result_cache"} == {"0"}
    bodies = {services.store.get(r.key).json()["title"] for r in results}
    assert len(bodies) == 1


def test_a_later_identical_request_is_served_from_the_cache(services: Any, gateway: Any) -> None:
    from pipelines.product_copy import generate_product_copy

    # Given a product written once
    product = sample_products("electricshop")[2]
    first = arun(generate_product_copy(services, "electricshop", product, job_id="job-a"))
    # When the same product is asked for again by another job
    second = arun(generate_product_copy(services, "electricshop", product, job_id="job-b"))
    # Then no model call is made and the output says where it came from
    assert gateway.stats()["requests"] == 1
    assert second.meta["served"] == "result_cache" and second.meta["cost_usd"] == "0"
    assert second.meta["job_id"] == "job-b" and second.meta["source_job_id"] == "job-a"
    assert second.meta["input_hash"] == first.meta["input_hash"]


def test_a_different_input_is_a_miss(services: Any, gateway: Any) -> None:
    from pipelines.product_copy import generate_product_copy

    # Given a product written once in one brand voice
    product = sample_products("electricshop")[3]
    arun(generate_product_copy(services, "electricshop", product))
    # When it is asked for in another voice
    other = arun(generate_product_copy(services, "electricshop", product, {"brand_voice": "playful"}))
    # Then that is a new generation
    assert other.meta["served"] == "fresh"
    assert gateway.stats()["model_calls"] == 2


def test_force_fresh_bypasses_both_caches(services: Any, gateway: Any) -> None:
    from pipelines.product_copy import generate_product_copy

    # Given a product written once (result cache and gateway cache both warm)
    product = sample_products("kiids-kingdom")[2]
    arun(generate_product_copy(services, "kiids-kingdom", product))
    # When a fresh generation is forced
    again = arun(generate_product_copy(services, "kiids-kingdom", product, {"force_fresh": True}))
    # Then the model is called again (cf-aig-skip-cache: no gateway HIT) and the entry is replaced
    assert again.meta["served"] == "fresh"
    assert gateway.stats()["model_calls"] == 2 and gateway.stats()["cache_hits"] == 0
    third = arun(generate_product_copy(services, "kiids-kingdom", product))
    assert third.meta["served"] == "result_cache" and third.meta["source_job_id"] == ""


def test_single_flight_across_processes(redis_client: Any, redis_server: Any) -> None:
    from adapters.redis_conn import get_async_redis
    from pipelines.result_cache import ResultCache

    aio = get_async_redis(redis_server.url)
    # Given two processes' caches on one Redis and a slow computation
    caches = [ResultCache(redis_client, aio, ttl_s=60), ResultCache(redis_client, aio, ttl_s=60)]
    computed: list[int] = []

    async def compute() -> dict[str, Any]:
        computed.append(1)
        await asyncio.sleep(0.2)
        return {"answer": 42}

    async def many() -> list[Any]:
        return await asyncio.gather(
            *(caches[i % 2].get_or_compute("test", "k1", compute, store="s1") for i in range(10))
        )

    # When ten callers, five in each, ask at once
    got = arun(many())
    # Then one computed, everyone got its value, and the lock is gone
    assert len(computed) == 1
    assert [g.value for g in got] == [{"answer": 42}] * 10
    assert sum(not g.hit for g in got) == 1
    assert redis_client.keys("wandstore:rc-lock:*") == []


def test_a_failed_computation_is_taken_over_by_a_waiter(redis_client: Any, redis_server: Any) -> None:
    from adapters.redis_conn import get_async_redis
    from pipelines.result_cache import ResultCache

    aio = get_async_redis(redis_server.url)
    # Given a computation that fails the first time
    cache = ResultCache(redis_client, aio, ttl_s=60)
    attempts: list[int] = []

    async def compute() -> dict[str, Any]:
        attempts.append(1)
        await asyncio.sleep(0.05)
        if len(attempts) == 1:
            raise RuntimeError("model down")
        return {"ok": True}

    async def two() -> list[Any]:
        return await asyncio.gather(
            cache.get_or_compute("test", "k2", compute, store="s1"),
            cache.get_or_compute("test", "k2", compute, store="s1"),
            return_exceptions=True,
        )

    # When two callers ask at once
    first, second = arun(two())
    # Then the first gets its own error and the second computes the value itself
    assert isinstance(first, RuntimeError)
    assert second.value == {"ok": True} and not second.hit
    assert len(attempts) == 2


def test_a_waiter_computes_itself_when_the_lock_outlasts_its_wait(
    redis_client: Any, redis_server: Any
) -> None:
    from adapters.redis_conn import get_async_redis
    from pipelines.result_cache import ResultCache

    aio = get_async_redis(redis_server.url)
    # Given a lock another process holds and never releases, and a cache that waits 0.3 s
    cache = ResultCache(redis_client, aio, ttl_s=60, wait_s=0.3)
    redis_client.set("wandstore:rc-lock:s1:test:k3", "other-job|token", px=60_000)

    async def compute() -> dict[str, Any]:
        return {"mine": True}

    # When a caller asks
    started = time.monotonic()
    got = arun(cache.get_or_compute("test", "k3", compute, store="s1"))
    # Then it polled for about its wait, then computed and stored the value itself
    assert 0.1 < time.monotonic() - started < 0.3 + 1.0  # not the lock's 60 s
    assert got.value == {"mine": True} and not got.hit
    assert arun(cache.get("test", "k3", store="s1")) == {"mine": True}
