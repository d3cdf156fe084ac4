"""Prometheus metrics of the worker: tokens, cost and cache hits; job durations and queue wait.

Served on `METRICS_HOST:METRICS_PORT` (127.0.0.1 unless told otherwise) when `METRICS_PORT` is
set. Under the `dramatiq` command a worker runs several processes: each writes its samples to
a shared directory (prometheus-client's multiprocess mode) and the first to bind the port
serves them all.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dramatiq.middleware import Middleware

from adapters.logs import get_logger
from adapters.pipeline_names import canonical
from adapters.settings import get_settings
from agents.usage import Served, UsageRecord, nano_to_usd

log = get_logger("pipelines.metrics")
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800)


@dataclass(frozen=True)
class Instruments:
    """The metric objects (created on first use, after the process chose its mode)."""

    tokens: Any
    cost: Any
    saved: Any
    calls: Any
    cache_hits: Any
    budget_refusals: Any
    job_duration: Any
    queue_wait: Any
    jobs_lost: Any


_lock = threading.Lock()


def instruments() -> Instruments:
    """The process's metric objects; created once, by whichever thread asks first."""
    with _lock:
        return _instruments()


@functools.cache
def _instruments() -> Instruments:
    # Imported here: multiprocess mode must be set in the environment before the first metric.
    from prometheus_client import Counter, Histogram

    usage = ("store", "pipeline", "model")
    return Instruments(
        tokens=Counter("wandstore_tokens", "Tokens the provider processed.", [*usage, "kind"]),
        cost=Counter("wandstore_cost_usd", "Model spend in USD (gateway HITs cost 0).", usage),
        saved=Counter("wandstore_saved_usd", "List price of what the caches answered instead.", usage),
        calls=Counter(
            "wandstore_model_calls", "Calls sent to the gateway, by how they were served.", [*usage, "served"]
        ),
        cache_hits=Counter("wandstore_cache_hits", "Answers served by a cache layer.", [*usage, "layer"]),
        budget_refusals=Counter(
            "wandstore_budget_refusals", "Calls refused by a budget.", ["store", "pipeline"]
        ),
        job_duration=Histogram(
            "wandstore_job_duration_seconds",
            "Time to process a message.",
            ["pipeline", "queue", "outcome"],
            buckets=_SECONDS,
        ),
        queue_wait=Histogram(
            "wandstore_job_queue_wait_seconds",
            "Time from enqueue (or retry eta) to processing.",
            ["pipeline", "queue"],
            buckets=_SECONDS,
        ),
        jobs_lost=Counter(
            "wandstore_jobs_lost",
            "Accepted jobs whose message vanished from Redis, reported lost (pipelines/lost_jobs.py).",
            ["pipeline"],
        ),
    )


def observe_usage(record: UsageRecord) -> None:
    """Count one settled usage record."""
    m = instruments()
    labels = (record.store, record.pipeline, record.model)
    if record.served is Served.RESULT_CACHE:
        m.cache_hits.labels(*labels, "result").inc()
    else:
        m.calls.labels(*labels, record.served.value).inc()
        if record.served is Served.GATEWAY_CACHE:
            m.cache_hits.labels(*labels, "gateway").inc()
        else:
            u = record.usage
            m.tokens.labels(*labels, "prompt").inc(u.prompt_tokens)
            m.tokens.labels(*labels, "cached_prompt").inc(u.cached_prompt_tokens)
            m.tokens.labels(*labels, "completion").inc(u.completion_tokens)
    if record.cost_nano:
        m.cost.labels(*labels).inc(float(nano_to_usd(record.cost_nano)))
    if record.saved_nano:
        m.saved.labels(*labels).inc(float(nano_to_usd(record.saved_nano)))


def observe_budget_refusal(store: str, pipeline: str) -> None:
    instruments().budget_refusals.labels(store, pipeline).inc()


def observe_job_lost(pipeline: str) -> None:
    instruments().jobs_lost.labels(canonical(pipeline)).inc()  # a status written before may say build_theme


def registry() -> Any:
    """What to expose: every process's samples in multiprocess mode, else this process's."""
    import prometheus_client
    from prometheus_client import multiprocess

    if os.environ.get(_MULTIPROC_ENV):
        reg = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        return reg
    return prometheus_client.REGISTRY


def serve(host: str, port: int) -> Any:
    """Start the exposition server in a thread; returns the server (call `.shutdown()` to stop)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=registry())
    log.info("metrics_serving", host=host, port=port)
    return server


class WorkerMetrics(Middleware):
    """Job durations and queue wait per message; starts the metrics server at worker boot."""

    def __init__(self) -> None:
        self.server: Any = None
        self._multiprocess = False

    def after_process_boot(self, broker: Any) -> None:
        # Only the `dramatiq` command emits this, once per worker process it forks.
        if get_settings().metrics_port is None:
            return
        shared = Path(tempfile.gettempdir()) / f"wandstore-metrics-{os.getppid()}"
        shared.mkdir(parents=True, exist_ok=True)
        os.environ[_MULTIPROC_ENV] = str(shared)
        self._multiprocess = True

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        settings = get_settings()
        if settings.metrics_port is None or self.server is not None:
            return
        try:
            self.server = serve(settings.metrics_host, settings.metrics_port)
        except OSError as exc:
            if self._multiprocess and exc.errno == errno.EADDRINUSE:
                return  # a sibling process serves the shared samples
            log.error("metrics_not_served", port=settings.metrics_port, error=str(exc))

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None
        if self._multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())

    def before_process_message(self, broker: Any, message: Any) -> None:
        now_ms = time.time() * 1000
        ready_ms = max(float(message.message_timestamp), float(message.options.get("eta") or 0))
        instruments().queue_wait.labels(canonical(message.actor_name), message.queue_name).observe(
            max(now_ms - ready_ms, 0) / 1000
        )
        message.options["_metrics_started"] = time.perf_counter()

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        started = message.options.pop("_metrics_started", None)
        if started is None:
            return
        outcome = "done" if exception is None else ("failed" if message.failed else "retried")
        instruments().job_duration.labels(canonical(message.actor_name), message.queue_name, outcome).observe(
            time.perf_counter() - started
        )

    after_skip_message = after_process_message
