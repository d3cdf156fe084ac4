"""`/healthz` (Redis, object store, gateway reachable) and `/metrics`."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import redis
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters import __version__
from adapters.errors import StoreError, WandstoreError
from entrypoints.api.common import ctx_of
from entrypoints.api.schemas import Check, Health

router = APIRouter(tags=["operations"])
TIMEOUT_S = 2.0


def _timed(check: Callable[[], str]) -> Check:
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except (redis.RedisError, StoreError, WandstoreError, httpx.HTTPError, OSError) as exc:
        detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
    return Check(ok=ok, detail=detail, latency_ms=round((time.perf_counter() - started) * 1000, 2))


def _gateway_check(base_url: str | None) -> Callable[[], str]:
    def check() -> str:
        if base_url is None:
            return "embedded dev gateway: each worker serves its own, offline"
        # Any HTTP answer means reachable; the gateway checks auth per model call.
        response = httpx.get(base_url, timeout=TIMEOUT_S)
        if response.status_code >= 500:
            raise httpx.HTTPError(f"gateway answered HTTP {response.status_code}")
        return f"reachable (HTTP {response.status_code})"

    return check


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(request: Request) -> JSONResponse:
    """200 when Redis, the object store and the AI gateway are reachable; 503 naming what is not."""
    ctx = ctx_of(request)

    def redis_check() -> str:
        ctx.redis.ping()
        return "ping ok"

    def store_check() -> str:
        ctx.store.ping()
        return f"{ctx.store.name} store ok"

    checks = {
        "redis": _timed(redis_check),
        "object_store": _timed(store_check),
        "gateway": _timed(_gateway_check(ctx.settings.gateway_base_url)),
    }
    ok = all(c.ok for c in checks.values())
    body = Health(ok=ok, version=__version__, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus text format: requests, latency, generations enqueued, queue depth."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
