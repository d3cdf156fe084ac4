"""Worker metrics over HTTP: tokens, cost and cache hits by store; job durations and queue wait."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import sample_products
from tests.fixtures.redis import free_port
from tests.helpers import send_plain, wait_job


@pytest.fixture
def metrics_server() -> Iterator[str]:
    from pipelines.metrics import serve

    server = serve("127.0.0.1", free_port())
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}/metrics"
    server.shutdown()
    server.server_close()


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url, timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_worker_metrics_count_tokens_cost_hits_and_jobs(
    metrics_server: str, services: Any, worker: Any, gateway: Any
) -> None:
    from adapters.costs import cost_report
    from adapters.ledger import Ledger
    from entrypoints import compose

    broker = compose.process_broker()

    # Given the metrics endpoint before any work for this store
    before = scrape(metrics_server)
    product = sample_products("electricshop")[30]
    # When a product's copy is written, and then asked for again (a result-cache hit)
    for _ in range(2):
        info = wait_job(
            services.status, send_plain(broker, "product_copy", "batch", "metrics-a", product, {})
        )
        assert info["status"] == "done", info
    after = scrape(metrics_server)
    # Then tokens, cost and hits by store match the ledger
    ledger = cost_report(Ledger(services.redis), store="metrics-a")["totals"]
    store = {"store": "metrics-a", "pipeline": "product_copy", "model": "openai/gpt-4o-mini"}
    prompt = value(after, "wandstore_tokens_total", kind="prompt", **store)
    assert prompt - value(before, "wandstore_tokens_total", kind="prompt", **store) == ledger["prompt_tokens"]
    cost = value(after, "wandstore_cost_usd_total", **store) - value(
        before, "wandstore_cost_usd_total", **store
    )
    assert cost == pytest.approx(float(ledger["cost_usd"]), rel=1e-9)
    assert value(after, "wandstore_cache_hits_total", layer="result", **store) == 1
    assert value(after, "wandstore_model_calls_total", served="fresh", **store) == 1
    # and job durations and queue waits were observed
    jobs = {"pipeline": "product_copy", "queue": "batch"}
    for name in ("wandstore_job_duration_seconds_count", "wandstore_job_queue_wait_seconds_count"):
        assert value(after, name, **jobs) - value(before, name, **jobs) == 2, name


def test_worker_boot_serves_metrics_on_localhost_when_a_port_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.settings import load_settings
    from pipelines import metrics

    # Given METRICS_PORT set and METRICS_HOST left at its default
    port = free_port()
    monkeypatch.setattr(metrics, "get_settings", lambda: load_settings(metrics_port=port))
    middleware = metrics.WorkerMetrics()
    # When the worker boots
    middleware.before_worker_boot(None, None)
    try:
        # Then metrics are served on 127.0.0.1 only
        assert middleware.server.server_address[0] == "127.0.0.1"
        assert "wandstore_job_duration_seconds" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        middleware.after_worker_shutdown(None, None)
    assert middleware.server is None


def test_no_metrics_server_without_a_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.settings import load_settings
    from pipelines import metrics

    monkeypatch.setattr(metrics, "get_settings", lambda: load_settings(metrics_port=None))
    middleware = metrics.WorkerMetrics()
    middleware.before_worker_boot(None, None)
    assert middleware.server is None
