"""One span per API request, continuing the caller's W3C `traceparent`; what it enqueues continues it.

Only when this process exports traces (`OTEL_EXPORTER_OTLP_ENDPOINT`); otherwise the middleware
passes requests straight through. The span is current while the route runs, so the jobs it
enqueues carry its context in their message options (`pipelines/submit.py`) and each
job's span is its child: one trace from the request to the last model call.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.telemetry import context_from, enabled, tracer
from entrypoints.api.metrics import _route_of as route_of


class RequestTrace:
    """ASGI middleware: a SERVER span named `{method} {route template}` (never the raw path)."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not enabled():
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        method = scope["method"]
        span = tracer().start_span(method, context=context_from(headers), kind=SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span))
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_of(scope, self.routes)
            span.update_name(f"{method} {route}")
            span.set_attributes(
                {"http.request.method": method, "http.route": route, "http.response.status_code": status}
            )
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
            otel_context.detach(token)
