"""What tracing costs a job: the spans of a theme build-sized job, with no exporter and with one.

`python -m bench.tracing [--jobs N]` prints one Markdown table: CPU microseconds per job for the
job's span, 5 agent steps and 6 model calls (the `traceparent` header built for each call), as
the worker runs them (`pipelines.tracing.JobTrace`, `agents.spans`), three ways side by side:

- no tracing code at all (the loop alone),
- no `OTEL_EXPORTER_OTLP_ENDPOINT`: no SDK provider, and no span opened (the production default),
- for comparison, the API's non-recording spans, had the spans been opened with no provider,
- an SDK provider recording every span (its batch exporter discards them: no network).

The last two run in child processes: a process installs one tracer provider for good.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

AGENTS = 5
CALLS = 6  # one repair


def _job_parts() -> tuple[Any, Any, Any, Any]:
    from dramatiq import Message

    from adapters.settings import DEFAULT_PROMPTS_DIR
    from agents.gateway import CallResult
    from agents.prompts import PromptRegistry
    from agents.schemas import OUTPUT_MODELS
    from agents.usage import CallContext, Usage

    prompt = PromptRegistry(DEFAULT_PROMPTS_DIR, OUTPUT_MODELS).get("product_copy")
    message = Message(
        queue_name="batch", actor_name="build_theme", args=("a-store", {}), kwargs={}, options={}
    )
    result = CallResult(
        "{}", Usage(900, 0, 0, 300), 1234, "MISS", "LOG1", 12.0, "openai/gpt-4o-mini", "openai", 0
    )
    return message, CallContext("a-store", "theme_build", job_id=message.message_id), prompt, result


def _per_job_us(jobs: int, traced: bool) -> float:
    from adapters.telemetry import trace_headers
    from agents import spans
    from pipelines.tracing import JobTrace

    message, ctx, prompt, result = _job_parts()
    middleware = JobTrace()
    started = time.process_time()
    for _ in range(jobs):
        if not traced:
            for _ in range(CALLS):
                pass
            continue
        middleware.before_process_message(None, message)
        for n in range(AGENTS):
            with spans.agent_span("theme_designer", ctx) as step:
                spans.note_prompt(prompt)
                for _ in range(2 if n == 0 else 1):
                    with spans.model_span("openai/gpt-4o-mini", "openai", ctx, prompt) as call:
                        trace_headers()
                        spans.end_model_call(call, result)
                spans.end_agent(step, 1234, "fresh")
        middleware.after_process_message(None, message)
    return (time.process_time() - started) / jobs * 1e6


def _recording(jobs: int) -> float:
    """Per-job microseconds with an SDK provider installed (in this process: call it in a child)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    import adapters.telemetry as telemetry

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    trace.set_tracer_provider(provider)
    telemetry._provider = provider  # what setup_tracing does, without the OTLP exporter
    return _per_job_us(jobs, traced=True)


def _api_noop(jobs: int) -> float:
    """Per-job microseconds if spans were opened with no provider (the API's non-recording spans)."""
    import adapters.telemetry as telemetry

    telemetry._provider = object()  # `enabled()` without a provider: the proxy tracer's no-op spans
    return _per_job_us(jobs, traced=True)


CHILDREN = {"recording": _recording, "api-noop": _api_noop}


def _child(mode: str, jobs: int) -> float:
    argv = [sys.executable, "-m", "bench.tracing", "--child", mode, "--jobs", str(jobs)]
    return float(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _per_job_us(200, traced=True)  # imports and first-call set-up out of the measurement
        print(CHILDREN[args.child](args.jobs))
        return
    _per_job_us(200, traced=True)
    baseline = _per_job_us(args.jobs, traced=False)
    unset = _per_job_us(args.jobs, traced=True)
    noop = _child("api-noop", args.jobs)
    recording = _child("recording", args.jobs // 4)
    spans = 1 + AGENTS + CALLS
    shape = f"a theme build: 1 job, {AGENTS} agent steps, {CALLS} model calls"
    print(f"{args.jobs} jobs of {spans} spans each ({shape})\n")
    print("| tracing | CPU per job (us) | per span (us) | vs endpoint unset |")
    print("|---|---:|---:|---:|")
    for name, us in (
        ("no tracing code (the loop alone)", baseline),
        ("OTEL_EXPORTER_OTLP_ENDPOINT unset (no span opened)", unset),
        ("(if spans were opened anyway: the API's no-op spans)", noop),
        ("endpoint set: SDK recording, batch export", recording),
    ):
        print(f"| {name} | {us:.1f} | {us / spans:.2f} | {us / unset:.0f}x |")


if __name__ == "__main__":
    main()
