"""OpenTelemetry traces and metrics: exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

Without an endpoint no SDK provider is installed, `enabled()` is False and the project opens no
span at all (a check of a module global: well under a microsecond a span, `python -m
bench.tracing`); no `traceparent` is sent.
With one, `setup_tracing` (called once per process by the composition root) installs a tracer
provider that batches spans to `{endpoint}/v1/traces`, and a meter provider that sends the GenAI
client metrics (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`) to
`{endpoint}/v1/metrics` every `OTEL_METRIC_EXPORT_INTERVAL` ms (the SDK's variable; 60 s).

Span names and attributes follow OpenTelemetry's GenAI semantic conventions (`gen_ai.*`); the
project's own attributes are `wandstore.*` (see docs/tracing.md).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

INSTRUMENTATION = "wandstore_agents"
_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer(INSTRUMENTATION)  # a proxy: real once a provider is installed
_lock = threading.Lock()
_provider: Any = None
_meters: Any = None
_instruments: dict[str, Any] = {}


def tracer() -> trace.Tracer:
    return _tracer


def enabled() -> bool:
    """Whether this process exports spans (`setup_tracing` installed a provider)."""
    return _provider is not None


def setup_tracing(endpoint: str | None, service_name: str) -> bool:
    """Install the OTLP/HTTP exporting provider once per process; False (nothing done) without an endpoint."""
    global _provider, _meters
    if not endpoint:
        return False
    with _lock:
        if _provider is None:
            # Imported only here: a process without an endpoint never loads the SDK.
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            base = endpoint.rstrip("/")
            resource = Resource.create({"service.name": service_name})
            provider = TracerProvider(resource=resource)
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=base + "/v1/traces")))
            trace.set_tracer_provider(provider)
            reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=base + "/v1/metrics"))
            meters = MeterProvider(resource=resource, metric_readers=[reader])
            metrics.set_meter_provider(meters)
            _provider, _meters = provider, meters
    return True


def instrument(name: str, unit: str, description: str) -> Any:
    """A histogram of this process's meter (created once per name)."""
    found = _instruments.get(name)
    if found is None:
        meter = metrics.get_meter(INSTRUMENTATION)
        found = _instruments[name] = meter.create_histogram(name, unit=unit, description=description)
    return found


def flush(timeout_ms: int = 5000) -> None:
    """Send the spans still batched (a CLI command before it exits; workers flush at exit)."""
    for provider in (_provider, _meters):
        if provider is not None:
            provider.force_flush(timeout_ms)


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
