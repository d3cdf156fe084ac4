"""Spans of an agent step and of a model call, by OpenTelemetry's GenAI semantic conventions.

An agent step is `invoke_agent {agent}` (INTERNAL), each model call in it `chat {model}` (CLIENT).
With no exporter configured no span is opened (the API's no-op spans cost ~7 us each,
`python -m bench.tracing`), and attributes are only built for a recording span.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind

from adapters.telemetry import enabled, instrument, tracer
from agents.usage import CallContext, nano_to_usd

if TYPE_CHECKING:
    from agents.gateway import CallResult
    from agents.prompts import Prompt


def _context_attributes(ctx: CallContext) -> dict[str, Any]:
    return {
        "wandstore.store": ctx.store,
        "wandstore.pipeline": ctx.pipeline,
        "wandstore.agent": ctx.agent,
        "wandstore.job_id": ctx.job_id,
    }


@contextmanager
def agent_span(agent: str, ctx: CallContext) -> Iterator[Span]:
    """The span of one agent step (its calls, repair included); an error ends it as an error."""
    if not enabled():
        yield INVALID_SPAN
        return
    with tracer().start_as_current_span(f"invoke_agent {agent}", kind=SpanKind.INTERNAL) as span:
        if span.is_recording():
            span.set_attributes(
                {
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": agent,
                    **_context_attributes(ctx.for_agent(agent)),
                }
            )
        yield span


def note_prompt(prompt: Prompt) -> None:
    """Name the prompt version the current agent step runs (known once labels are resolved)."""
    if not enabled():
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(
            {"wandstore.prompt.name": prompt.agent, "wandstore.prompt.version": prompt.version}
        )


def end_agent(span: Span, cost_nano: int, served: str) -> None:
    if span.is_recording():
        span.set_attributes({"wandstore.cost_usd": float(nano_to_usd(cost_nano)), "wandstore.served": served})


@contextmanager
def model_span(model: str, provider: str, ctx: CallContext, prompt: Prompt) -> Iterator[Span]:
    """The span of one model call; its context is the `traceparent` AI Gateway receives."""
    if not enabled():
        yield INVALID_SPAN
        return
    with tracer().start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
        if span.is_recording():
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": provider,
                    "gen_ai.system": provider,  # the older name, for backends that still read it
                    "gen_ai.request.model": model,
                    "wandstore.prompt.name": prompt.agent,
                    "wandstore.prompt.version": prompt.version,
                    **_context_attributes(ctx),
                }
            )
            if prompt.meta.max_tokens:
                span.set_attribute("gen_ai.request.max_tokens", prompt.meta.max_tokens)
            if prompt.meta.temperature is not None:
                span.set_attribute("gen_ai.request.temperature", prompt.meta.temperature)
        yield span


def end_model_call(span: Span, result: CallResult) -> None:
    if not span.is_recording():
        return
    _count(result, str(getattr(span, "attributes", {}).get("gen_ai.request.model", result.model)))
    usage = result.usage
    attributes: dict[str, Any] = {
        "gen_ai.response.model": result.model,
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cached_prompt_tokens,
        "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
        "wandstore.cost_usd": float(nano_to_usd(result.cost_nano)),
        "wandstore.served": result.served.value,
        "wandstore.gateway.cache_status": result.cache_status,
    }
    if result.log_id:
        attributes["wandstore.gateway.log_id"] = result.log_id
    if result.step is not None:
        attributes["wandstore.gateway.step"] = result.step
    span.set_attributes(attributes)


def _count(result: CallResult, requested: str) -> None:
    """The GenAI client metrics of one call: tokens by type, and its duration."""
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": result.provider,
        "gen_ai.request.model": requested,
        "gen_ai.response.model": result.model,
    }
    tokens = instrument("gen_ai.client.token.usage", "{token}", "Tokens used per model call, by type")
    tokens.record(result.usage.prompt_tokens, {**base, "gen_ai.token.type": "input"})
    tokens.record(result.usage.completion_tokens, {**base, "gen_ai.token.type": "output"})
    duration = instrument("gen_ai.client.operation.duration", "s", "Duration of a model call")
    duration.record(result.latency_ms / 1000, base)
