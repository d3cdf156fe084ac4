"""`create_app()`: the web process (`uvicorn entrypoints.api.app:create_app --factory`)."""

from __future__ import annotations

from fastapi import FastAPI

from adapters import __version__
from adapters.settings import Settings, get_settings
from entrypoints import compose
from entrypoints.api.auth import Gate
from entrypoints.api.context import ApiContext
from entrypoints.api.errors import install_handlers
from entrypoints.api.limits import BodyLimit
from entrypoints.api.metrics import ApiMetrics, RequestLog
from entrypoints.api.routes import batches, costs, generations, health, outputs, themes

DESCRIPTION = """\
Ask for generations (product copy, personalization, theme builds), watch them, read what was
published, run whole-catalog copy batches, manage themes and read costs.

Every `/v1/` call needs `Authorization: Bearer <token>`: a store's token (`wandstore-agents
tokens create STORE`) reaches that store only; the ops token (`OPS_API_TOKEN`) every store.
Errors are `{"error": {"code", "message", "details"}}`.
"""


def create_app(context: ApiContext | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the API over `context` (tests), or over one built from the environment."""
    settings = settings or (context.settings if context else get_settings())
    compose.configure(settings)
    ctx = context or compose.api_context(settings)
    app = FastAPI(
        title="wandstore-agents",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.metrics = metrics = ApiMetrics(ctx.redis)
    install_handlers(app)
    for module in (generations, outputs, batches, themes, costs, health):
        app.include_router(module.router)
    # Added innermost first: a request meets RequestLog, then Gate (401/403/429), then BodyLimit (413).
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(Gate, tokens=ctx.tokens, limiter=ctx.limiter)
    app.add_middleware(RequestLog, metrics=metrics)
    return app
