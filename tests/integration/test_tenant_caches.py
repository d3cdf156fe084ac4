"""Tenant-private caches: two stores with identical input share no generation and learn nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import sample_products
from tests.helpers import arun


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def test_two_stores_with_identical_input_make_two_calls_and_share_nothing(
    services: Any, gateway: Any
) -> None:
    from pipelines.product_copy import generate_product_copy

    # Given store A has had copy written for a product (result cache and gateway cache warm)
    product = sample_products("stanley1913")[4]
    a = arun(generate_product_copy(services, "stanley1913", product, job_id="job-of-store-a"))
    # When store B submits the identical product
    b = arun(generate_product_copy(services, "dropship-b", product, job_id="job-of-store-b"))
    # Then the model was called twice: no result-cache hit, no gateway-cache hit across stores
    stats = gateway.stats()
    assert stats["model_calls"] == 2 and stats["cache_hits"] == 0
    assert a.meta["served"] == "fresh" and b.meta["served"] == "fresh"
    assert b.meta["cost_usd"] != "0" and b.meta.get("source_job_id") is None
    # And nothing of A's is in B's published output: no job id, no timing, no store name
    published = services.store.get(b.key).json()
    text = json.dumps(published)
    for leak in ("job-of-store-a", "stanley1913", a.meta["generated_at"]):
        assert leak not in text, leak
    assert published["meta"]["job_id"] == "job-of-store-b" and published["meta"]["store"] == "dropship-b"


def test_within_one_store_the_cache_still_serves(services: Any, gateway: Any) -> None:
    from pipelines.product_copy import generate_product_copy

    # Given store B has had copy written for a product
    product = sample_products("electricshop")[5]
    arun(generate_product_copy(services, "dropship-b", product, job_id="b-1"))
    # When store B asks again
    again = arun(generate_product_copy(services, "dropship-b", product, job_id="b-2"))
    # Then it is served from its own result cache, naming its own earlier job
    assert gateway.stats()["model_calls"] == 1
    assert again.meta["served"] == "result_cache" and again.meta["source_job_id"] == "b-1"


def test_result_cache_entries_and_locks_are_under_the_store(redis_client: Any, redis_server: Any) -> None:
    from adapters.errors import InvalidInput
    from adapters.redis_conn import get_async_redis
    from pipelines.result_cache import ResultCache

    cache = ResultCache(redis_client, get_async_redis(redis_server.url), ttl_s=60)
    calls: list[str] = []

    async def compute_for(store: str) -> dict[str, Any]:
        calls.append(store)
        return {"by": store}

    async def both() -> list[Any]:
        a = await cache.get_or_compute("p", "same-key", lambda: compute_for("a"), store="store-a")
        b = await cache.get_or_compute("p", "same-key", lambda: compute_for("b"), store="store-b")
        return [a, b]

    # When two stores ask for one key
    a, b = arun(both())
    # Then each computed its own value, kept under its own store
    assert calls == ["a", "b"] and a.value == {"by": "a"} and b.value == {"by": "b"}
    keys = sorted(redis_client.keys("wandstore:rc:*"))
    assert keys == [b"wandstore:rc:store-a:p:same-key", b"wandstore:rc:store-b:p:same-key"]
    # And a store that is not a slug cannot reach into another's keys
    with pytest.raises(InvalidInput, match="store slug"):
        arun(cache.get("p", "k", store="store-a:p"))
