"""One span per job: `job {pipeline}`, the parent of the job's agent steps and model calls.

The span starts before the actor runs and is the current span of the worker thread; Dramatiq's
AsyncIO middleware hands the actor's coroutine to the event loop with a copy of that thread's
context, so every span the job's coroutine opens is its child. A message whose options carry a
W3C `traceparent` (the request that enqueued it) continues that trace.
"""

from __future__ import annotations

import threading
from typing import Any

from dramatiq.middleware import Middleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from adapters.logs import scrub
from adapters.pipeline_names import canonical
from adapters.telemetry import context_from, enabled, tracer
from pipelines.middleware import recorded_result

_Open = tuple[trace.Span, object]


class JobTrace(Middleware):
    """Open the job's span before the actor runs; close it with the job's outcome, cost and served-by."""

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()

    def before_process_message(self, broker: Any, message: Any) -> None:
        if not enabled():
            return  # no exporter: no span (see adapters/telemetry.py)
        pipeline = canonical(message.actor_name)
        span = tracer().start_span(
            f"job {pipeline}",
            context=context_from(message.options),
            kind=SpanKind.CONSUMER,
        )
        if span.is_recording():
            args = message.args or ()
            store = args[0] if args and isinstance(args[0], str) else None
            span.set_attributes(
                {
                    "wandstore.pipeline": pipeline,
                    "wandstore.job_id": message.message_id,
                    "messaging.system": "dramatiq",
                    "messaging.destination.name": message.queue_name,
                    "messaging.message.id": message.message_id,
                    "wandstore.retries": int(message.options.get("retries", 0)),
                }
            )
            if store:
                span.set_attribute("wandstore.store", store)
        token = otel_context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._open[message.message_id] = (span, token)

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        with self._lock:
            found = self._open.pop(message.message_id, None)
        if found is None:
            return
        span, token = found
        if span.is_recording():
            fields = recorded_result(message.message_id)
            if "cost_usd" in fields:
                span.set_attribute("wandstore.cost_usd", float(fields["cost_usd"] or 0))
            if fields.get("served"):
                span.set_attribute("wandstore.served", str(fields["served"]))
            if exception is not None:
                span.record_exception(exception)
                reason = scrub(f"{type(exception).__name__}: {exception}")[:200]
                span.set_status(Status(StatusCode.ERROR, reason))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self.after_process_message(broker, message)
