"""Work redone after a crash or a lost answer must come out the same: the publish checks compare bytes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.faults.env import sample_products
from tests.helpers import arun

BRIEF = {"description": "Plain-spoken goods for everyday use; calm, warm and trustworthy.", "tone": "warm"}


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def test_a_resumed_theme_build_renders_byte_identical_files(services: Any, gateway: Any) -> None:
    from pipelines.theme_build import build_theme, save_catalog

    # Given a build that published everything (its steps saved in Redis)
    save_catalog(services.store, "electricshop", {"products": sample_products("electricshop")[:10]})
    build_id = "5d0c3c84-7c8e-4f0a-9c57-8a0d7b8f4e21"
    first = arun(build_theme(services, "electricshop", BRIEF, build_id=build_id))
    prefix = f"themes/electricshop/builds/{build_id}/"
    before = {k: services.store.get(k).body for k in services.store.list(prefix)}
    # When the same build runs again from its saved steps (a redelivery after the answer was lost)
    again = arun(build_theme(services, "electricshop", BRIEF, build_id=build_id))
    # Then it finishes, and every file it would write is byte-identical to what is there
    after = {k: services.store.get(k).body for k in services.store.list(prefix)}
    assert again.keys == first.keys and after == before


def test_a_retried_job_takes_over_its_own_result_cache_lock(redis_client: Any, redis_server: Any) -> None:
    from adapters.redis_conn import get_async_redis
    from pipelines.result_cache import ResultCache

    aio = get_async_redis(redis_server.url)
    # Given a lock left behind by a delivery of job-1 that died (its lease still running)
    cache = ResultCache(redis_client, aio, ttl_s=60)
    lock = "wandstore:rc-lock:s1:product_copy:sha256:abc"
    entry = "wandstore:rc:s1:product_copy:sha256:abc"
    redis_client.set(lock, "job-1|deadbeef", px=30_000)
    # Then a later delivery of job-1 takes it over at once, while any other job still waits for it
    look = cache._get_or_acquire
    assert asyncio.run(look(entry, lock, "job-2|1234", "job-2|")) == (None, False)
    assert asyncio.run(look(entry, lock, "|5678", "")) == (None, False)
    assert asyncio.run(look(entry, lock, "job-1|cafe", "job-1|")) == (None, True)
    assert redis_client.get(lock) == b"job-1|cafe"
    # And once a value is stored (releasing the lock), every look-up gets it without locking
    asyncio.run(cache._put_and_release(entry, lock, "job-1|cafe", {"copy": 1}, None))
    assert redis_client.get(lock) is None
    assert asyncio.run(look(entry, lock, "job-3|beef", "job-3|")) == ({"copy": 1}, False)
    assert redis_client.get(lock) is None
