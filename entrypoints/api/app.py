"""`create_app()`: the web process (`uvicorn entrypoints.api.app:create_app --factory`, see the Procfile)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from adapters import __version__
from adapters.settings import Settings, get_settings
from entrypoints import compose
from entrypoints.api import openapi
from entrypoints.api.auth import Gate
from entrypoints.api.context import ApiContext
from entrypoints.api.errors import install_handlers
from entrypoints.api.health import HealthMonitor, PublicHealthz
from entrypoints.api.known_stores import KnownStores
from entrypoints.api.limits import BodyLimit, route_caps
from entrypoints.api.metrics import ApiMetrics, RequestLog
from entrypoints.api.openapi import operation_id
from entrypoints.api.routes import (
    batches,
    costs,
    drafts,
    generations,
    health,
    outputs,
    shared,
    shopify_webhooks,
    stores,
    themes,
)
from entrypoints.api.tracing import RequestTrace
from entrypoints.heap import keep_boot_heap, release_boot_heap

SWITCH_INTERVAL_S = 0.0005
DESCRIPTION = """\
Ask for generations (product copy, personalization, theme builds), watch them, read what was
published, run whole-catalog copy batches, manage themes and read costs.

Every `/v1/` call needs `Authorization: Bearer <token>`: a store's token (`wandstore-agents
tokens create STORE`) reaches that store only, and only what its scopes allow (`read`,
`generate`, `publish`, `catalog`; each route names the one it needs); the ops token
(`OPS_API_TOKEN`) every store and every scope. Errors are `{"error": {"code", "message", "details"}}`.
"""


def create_app(context: ApiContext | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the API over `context` (tests), or over one built from the environment."""
    settings = settings or (context.settings if context else get_settings())
    compose.configure(settings)
    ctx = context or compose.api_context(settings)
    monitor = HealthMonitor(settings, ctx.aredis, ctx.store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The event loop waits for the GIL while a thread parses a body or submits a batch: at
        # most 0.5 ms rather than CPython's 5 ms per hand-over (docs/api-isolation.md).
        previous = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        monitor.start()  # without a lifespan (some test servers), the first /healthz starts it
        keep_boot_heap()  # the app, its services and routes: out of the collector's full passes
        try:
            yield
        finally:
            release_boot_heap()
            await monitor.stop()
            sys.setswitchinterval(previous)

    app = FastAPI(
        title="wandstore-agents",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        generate_unique_id_function=operation_id,  # createGeneration, not create_generation_v1_...
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.health = monitor
    app.state.metrics = metrics = ApiMetrics(ctx.redis)
    install_handlers(app)
    modules = (stores, generations, outputs, batches, themes, shared, drafts, costs, health, shopify_webhooks)
    routers = [m.router for m in modules]
    for router in routers:
        app.include_router(router)
    openapi.install(app)
    # The body caps routes declare by name (`json_body(..., cap=...)`), in bytes.
    largest = settings.api_max_body_bytes
    caps = {
        "generation": (min(settings.api_generation_max_body_bytes, largest), "API_GENERATION_MAX_BODY_BYTES"),
        "upload": (largest, "API_MAX_BODY_BYTES"),
        "catalog": (settings.catalog_export_max_bytes, "CATALOG_EXPORT_MAX_BYTES"),  # streamed, not held
    }
    # Added innermost first: a request meets PublicHealthz, RequestLog, Gate (401/403/429), BodyLimit.
    declared = route_caps((route for router in routers for route in router.routes), caps)
    app.add_middleware(BodyLimit, caps=declared, timeout_s=settings.api_body_timeout_s)
    # After the gate, before the body: a store nobody added is a 404 naming `stores add`.
    app.add_middleware(KnownStores, aredis=ctx.aredis, timeout_s=settings.api_redis_timeout_s)
    app.add_middleware(
        Gate,
        tokens=ctx.tokens,
        limiter=ctx.limiter,
        aredis=ctx.aredis,
        timeout_s=settings.api_redis_timeout_s,
    )
    # The routers' own routes (with their prefixes): a refusal before routing is counted under one.
    app.add_middleware(RequestLog, metrics=metrics, routes=[r for router in routers for r in router.routes])
    # A span per request when traces are on (OTEL_EXPORTER_OTLP_ENDPOINT); what it enqueues continues it.
    app.add_middleware(RequestTrace, routes=[r for router in routers for r in router.routes])
    # Outermost: anonymous /healthz is answered before everything else.
    app.add_middleware(
        PublicHealthz, monitor=monitor, count=lambda status, s: metrics.observe("GET", "/healthz", status, s)
    )
    return app
