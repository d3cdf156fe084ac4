"""A label move takes effect for the next job: the label epoch, read per call, on the Procfile's workers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from adapters.prompt_labels import EPOCH_KEY, LabelEpoch, PromptLabels
from adapters.redis_conn import get_async_redis
from adapters.settings import DEFAULT_PROMPTS_DIR
from agents.prompts import PromptRegistry
from agents.rollout import LabelResolver
from agents.schemas import OUTPUT_MODELS
from agents.usage import CallContext
from tests.conftest import sample_products
from tests.helpers import arun, wait_job

AGENT = "product_copy"


def registry() -> PromptRegistry:
    return PromptRegistry(DEFAULT_PROMPTS_DIR, OUTPUT_MODELS)


@pytest.fixture
def labels(redis_client: Any) -> PromptLabels:
    return PromptLabels(redis_client)


def test_every_move_bumps_the_epoch_in_its_own_transaction(labels: PromptLabels) -> None:
    # Given no label moves yet
    assert labels.epoch() == 0
    # When production is promoted, rolled back, and the labels cleared
    labels.promote(AGENT, "production", "v2", fallback="v1")
    assert labels.epoch() == 1
    labels.rollback(AGENT, "production")
    labels.clear(AGENT)
    # Then each of them counted
    assert labels.epoch() == 3


def test_a_move_reaches_the_next_call_however_long_the_cache_ttl(
    labels: PromptLabels, redis_server: Any
) -> None:
    # Given a resolver whose cache would hold labels for a minute, serving v2
    labels.promote(AGENT, "production", "v2", fallback="v1")
    resolver = LabelResolver(
        labels, registry(), ttl_s=60, epoch=LabelEpoch(get_async_redis(redis_server.url))
    )
    ctx = CallContext("a-store", "product_copy")
    assert arun(resolver(AGENT, ctx)) == "v2"
    # When production is rolled back
    labels.rollback(AGENT, "production")
    # Then the very next call runs on v1, and a promote back is seen by the next call too
    assert arun(resolver(AGENT, ctx)) == "v1"
    labels.promote(AGENT, "production", "v2", fallback="v1")
    assert arun(resolver(AGENT, ctx)) == "v2"


def test_a_redis_that_lost_its_data_is_noticed(labels: PromptLabels, redis_server: Any) -> None:
    # Given a resolver that has seen production -> v2 at epoch 1
    labels.promote(AGENT, "production", "v2", fallback="v1")
    resolver = LabelResolver(
        labels, registry(), ttl_s=60, epoch=LabelEpoch(get_async_redis(redis_server.url))
    )
    assert arun(resolver(AGENT, CallContext("a-store", "t"))) == "v2"
    # When Redis comes back empty (epoch 0 again, no labels)
    labels.r.delete(EPOCH_KEY, "wandstore:prompt-labels:" + AGENT)
    # Then the files' default serves on the next call
    assert arun(resolver(AGENT, CallContext("a-store", "t"))) is None


def test_the_last_labels_serve_while_redis_is_away(labels: PromptLabels, redis_server: Any) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tests.fixtures.redis import free_port

    # Given a worker that has read production -> v2
    labels.promote(AGENT, "production", "v2", fallback="v1")
    resolver = LabelResolver(labels, registry(), ttl_s=0, epoch=LabelEpoch(get_async_redis(redis_server.url)))
    assert arun(resolver(AGENT, CallContext("a-store", "t"))) == "v2"
    # When Redis can no longer be reached, for the epoch nor for the labels
    port = free_port()
    resolver.source = PromptLabels(redis.Redis(port=port, retry=Retry(NoBackoff(), 0)))
    resolver.epoch = LabelEpoch(get_async_redis(f"redis://127.0.0.1:{port}"))
    # Then calls keep running on v2, at once
    started = time.monotonic()
    assert [arun(resolver(AGENT, CallContext(f"s-{n}", "t"))) for n in range(20)] == ["v2"] * 20
    assert time.monotonic() - started < 2


# --- on the Procfile's worker processes --------------------------------------------------------


def _versions(lane: Any, count: int, tag: str) -> list[str]:
    """Enqueue `count` product copy jobs at once; the prompt version each one was written with."""
    from pipelines.submit import submit_product_copy

    products = sample_products("electricshop")
    jobs = []
    for n in range(count):
        product = {**products[n % len(products)], "id": 9_000_000 + n}
        product["title"] = f"{product['title']} {tag} {n}"
        jobs.append(
            submit_product_copy(lane.broker, lane.status, "label-moves", product, {"force_fresh": True})
        )
    versions = []
    for job in jobs:
        info = wait_job(lane.status, job, timeout_s=60)
        assert info["status"] == "done", info
        versions.append(str(lane.objects().get(info["output_keys"][0]).json()["meta"]["prompt_version"]))
    return versions


def test_jobs_enqueued_right_after_a_rollback_all_run_the_rolled_back_version(lane: Any) -> None:
    labels = PromptLabels(lane.client)
    labels.clear(AGENT)
    try:
        # Given the workers have served product copy on v2 (promoted to production)
        labels.promote(AGENT, "production", "v2", fallback="v1")
        assert set(_versions(lane, 3, "warm")) == {"v2"}
        # ... and then were quiet for longer than the label cache's TTL (PROMPT_LABELS_TTL_S, 2 s)
        time.sleep(2.5)
        # When ops roll production back, and 60 jobs are enqueued as soon as that returns
        labels.rollback(AGENT, "production")
        after_rollback = _versions(lane, 60, "rollback")
        # Then every one of them ran on v1
        assert after_rollback == ["v1"] * 60
        # And after a promote back to v2 (100%), the next 60 all run on v2
        labels.promote(AGENT, "production", "v2", fallback="v1")
        assert _versions(lane, 60, "promote") == ["v2"] * 60
    finally:
        labels.clear(AGENT)
