"""OpenTelemetry traces: exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else free.

Without an endpoint no SDK provider is installed, `enabled()` is False and the project opens no
span at all (a check of a module global: well under a microsecond a span, `python -m
bench.tracing`); no `traceparent` is sent.
With one, `setup_tracing` (called once per process by the composition root) installs a provider
that batches spans to `{endpoint}/v1/traces` (OTLP/HTTP, protobuf).

Span names and attributes follow OpenTelemetry's GenAI semantic conventions (`gen_ai.*`); the
project's own attributes are `wandstore.*` (see docs/tracing.md).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

INSTRUMENTATION = "wandstore_agents"
_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer(INSTRUMENTATION)  # a proxy: real once a provider is installed
_lock = threading.Lock()
_provider: Any = None


def tracer() -> trace.Tracer:
    return _tracer


def enabled() -> bool:
    """Whether this process exports spans (`setup_tracing` installed a provider)."""
    return _provider is not None


def setup_tracing(endpoint: str | None, service_name: str) -> bool:
    """Install the OTLP/HTTP exporting provider once per process; False (nothing done) without an endpoint."""
    global _provider
    if not endpoint:
        return False
    with _lock:
        if _provider is None:
            # Imported only here: a process without an endpoint never loads the SDK.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
            exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
            provider.add_span_processor(BatchSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            _provider = provider
    return True


def flush(timeout_ms: int = 5000) -> None:
    """Send the spans still batched (a CLI command before it exits; workers flush at exit)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def trace_headers() -> dict[str, str]:
    """W3C `traceparent` (and `tracestate`) of the current span; {} when no span is recording."""
    carrier: dict[str, str] = {}
    if _provider is not None and trace.get_current_span().get_span_context().is_valid:
        _propagator.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, Any] | None) -> otel_context.Context | None:
    """The trace context a `traceparent` in `carrier` names (a message's options), or None."""
    if not carrier or "traceparent" not in carrier or _provider is None:
        return None
    headers = {k: str(v) for k, v in carrier.items() if k in ("traceparent", "tracestate")}
    return _propagator.extract(headers)
