"""Prometheus metrics of the web process, and a request log line per API call."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.logs import get_logger
from pipelines.dramatiq_gaps import queue_depth

log = get_logger("api")
QUEUES = ("interactive", "batch")
_QUIET = ("/metrics", "/healthz")
# The method label takes these values only; anything else is "other" (a client can send any
# token as a method, and each new label value would be a new series kept forever).
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class QueueDepth(Collector):
    """Messages waiting or in flight, and dead letters, per Dramatiq queue, read at scrape time."""

    def __init__(self, client: redis.Redis, namespace: str = "dramatiq") -> None:
        self.r = client
        self.namespace = namespace

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "wandstore_queue_messages", "Messages queued, delayed or in flight", labels=["queue"]
        )
        dead = GaugeMetricFamily(
            "wandstore_queue_dead_letters", "Messages in the dead-letter queue", labels=["queue"]
        )
        try:
            counts = queue_depth(self.r, QUEUES, self.namespace)
        except redis.RedisError:
            return  # /healthz says Redis is down; a scrape without these gauges is the honest answer
        for queue, (messages, letters) in counts.items():
            depth.add_metric([queue], messages)
            dead.add_metric([queue], letters)
        yield depth
        yield dead


class ApiMetrics:
    """The web process's own registry (one per app, so tests can build many apps)."""

    def __init__(self, client: redis.Redis) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "wandstore_api_requests",
            "API requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wandstore_api_request_seconds",
            "API request latency by route template",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.generations = Counter(
            "wandstore_api_generations",
            "Generations enqueued through the API",
            ["pipeline"],
            registry=self.registry,
        )
        self.registry.register(QueueDepth(client))

    def observe(self, method: str, route: str, status: int, elapsed_s: float) -> None:
        method = method if method in METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(elapsed_s)


class RequestLog:
    """Count, time and log every request by its route template (never its token or query)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the app's, to name a refused request's route (the list, kept live)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_of(scope, self.routes)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.observe(method, route, status, elapsed)
            if scope["path"] not in _QUIET:
                principal: Any = scope.get("state", {}).get("principal")
                log.info(
                    "api_request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    token_id=getattr(principal, "token_id", None),
                )


def _route_of(scope: Scope, routes: Sequence[BaseRoute] = ()) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    # Refused before routing (the gate's 401/403/429, the body cap's 413, an unknown store's
    # 404): the template the path would have reached, so refusals show on their route.
    for candidate in routes:
        found, _ = candidate.matches(scope)
        if found is not Match.NONE and getattr(candidate, "path", None):
            return str(candidate.path)  # type: ignore[attr-defined]
    # Paths no route takes share one label, so a scanner cannot blow up the series count.
    return "unmatched"
