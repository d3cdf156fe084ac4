"""`/healthz` (Redis, object store, gateway: up or down; details for the ops token) and `/metrics`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters import __version__
from entrypoints.api.auth import bearer_token
from entrypoints.api.common import ctx_of, iso
from entrypoints.api.errors import declare
from entrypoints.api.health import RETRY_AFTER_S, HealthMonitor, public
from entrypoints.api.schemas import Check, Health, PublicHealth

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    response_model=PublicHealth | Health,
    operation_id="getHealth",
    responses={
        503: {
            "model": PublicHealth | Health,
            "description": "Something is down",
            "headers": {
                "Retry-After": {"description": "Seconds until the next check", "schema": {"type": "integer"}}
            },
        }
    },
)
async def healthz(request: Request) -> JSONResponse:
    """200 `{"status": "up"}` or 503 `{"status": "down"}`, from a check that runs in the background.

    With the ops token (`Authorization: Bearer <OPS_API_TOKEN>`), each check's result, latency
    and reason, and when they were checked.
    """
    monitor: HealthMonitor = request.app.state.health
    report = await monitor.report()
    status = 200 if report.ok else 503
    token = bearer_token(request.scope)
    headers = None if report.ok else {"Retry-After": str(RETRY_AFTER_S)}
    if token is None or not ctx_of(request).tokens.is_ops(token):
        return JSONResponse(public(report), status_code=status, headers=headers)
    body = Health(
        status="up" if report.ok else "down",
        ok=report.ok,
        version=__version__,
        checked_at=iso(report.checked_at) or "",
        checks={
            name: Check(ok=c.ok, detail=c.detail, latency_ms=c.latency_ms)
            for name, c in report.checks.items()
        },
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


@router.get(
    "/metrics",
    response_class=Response,
    operation_id="getMetrics",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **declare(503)},
)
async def metrics(request: Request) -> Response:
    """Prometheus text format: requests, latency, generations enqueued, queue depth. No token needed.

    Open on purpose, like most scrape targets: every label takes a bounded set of values (method
    from an allowlist, route templates, status codes, queue and pipeline names) and none names a
    store, a token or an address. A scrape reads Redis on a thread of its own, one at a time.
    """
    registry = request.app.state.metrics.registry
    text = await ctx_of(request).pools.metrics.run(generate_latest, registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
