"""Traces and metrics over OTLP/HTTP: job -> agent steps -> model calls, by the GenAI conventions.

The Procfile's batch worker runs with `OTEL_EXPORTER_OTLP_ENDPOINT` pointed at a local receiver
(`tests/fixtures/otlp.py`); the session's dev gateway records the `traceparent` each call carried.
"""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import sample_products
from tests.fixtures.otlp import OtlpReceiver, Span
from tests.helpers import wait_job

STORE = "stanley1913"
THEME_AGENTS = {"brand_strategist", "theme_designer", "layout_planner", "section_copywriter", "theme_critic"}
CLIENT, INTERNAL, CONSUMER = 3, 1, 5  # OTLP's SpanKind numbers


def _tree(spans: list[Span], job_id: str) -> tuple[Span, list[Span], list[Span]]:
    """The job's span, its agent steps and their model calls (each parented as it should be)."""
    [job] = [s for s in spans if s.attributes.get("wandstore.job_id") == job_id and s.name.startswith("job ")]
    agents = [s for s in spans if s.parent_id == job.span_id]
    steps = {s.span_id for s in agents}
    calls = [s for s in spans if s.parent_id in steps]
    assert all(s.trace_id == job.trace_id for s in [*agents, *calls])
    return job, agents, calls


def _eventually(check: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def _parent(traceparent: str) -> tuple[str, str]:
    """Trace and parent span ids of a W3C `traceparent` (version 00, sampled)."""
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00" and int(flags, 16) & 1, traceparent
    return trace_id, span_id


def _done(receiver: OtlpReceiver, job_id: str, min_calls: int) -> list[Span]:
    def complete(spans: list[Span]) -> bool:
        try:
            _, _, calls = _tree(spans, job_id)
        except ValueError:
            return False
        return len(calls) >= min_calls

    return receiver.wait_for(complete)


def test_a_product_copy_job_is_one_trace_job_agent_model_call(
    traced_worker: Any, otlp_receiver: OtlpReceiver, gateway: Any
) -> None:
    from pipelines.submit import submit_product_copy

    # Given the Procfile's worker exporting traces to a local OTLP receiver
    product = sample_products(STORE)[3]
    # When it writes copy for one product
    job = submit_product_copy(
        traced_worker.broker, traced_worker.status, STORE, product, {"force_fresh": True}
    )
    info = wait_job(traced_worker.status, job, timeout_s=90)
    assert info["status"] == "done", info
    # Then the receiver holds one trace: the job, its agent step, the step's model call
    job_span, agents, calls = _tree(_done(otlp_receiver, job, 1), job)
    assert job_span.name == "job product_copy" and job_span.kind == CONSUMER
    assert job_span.service == "wandstore-worker-under-test"
    assert job_span.attributes["wandstore.store"] == STORE
    assert job_span.attributes["wandstore.served"] == "fresh"
    assert job_span.attributes["wandstore.cost_usd"] > 0
    [agent] = agents
    assert agent.name == "invoke_agent product_copy" and agent.kind == INTERNAL
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["wandstore.agent"] == "product_copy"
    assert agent.attributes["wandstore.prompt.name"] == "product_copy"
    assert agent.attributes["wandstore.prompt.version"] == "v1"
    [call] = calls
    attrs = call.attributes
    assert call.name == "chat openai/gpt-4o-mini" and call.kind == CLIENT
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai" and attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == "openai/gpt-4o-mini"
    assert attrs["gen_ai.usage.input_tokens"] > 100 and attrs["gen_ai.usage.output_tokens"] > 10
    assert "gen_ai.usage.cache_read.input_tokens" in attrs
    assert attrs["wandstore.store"] == STORE and attrs["wandstore.pipeline"] == "product_copy"
    assert attrs["wandstore.agent"] == "product_copy" and attrs["wandstore.prompt.version"] == "v1"
    assert attrs["wandstore.cost_usd"] > 0 and attrs["wandstore.served"] == "fresh"
    assert attrs["wandstore.gateway.step"] == 0 and attrs["wandstore.gateway.log_id"]
    # And AI Gateway got the job id as the event id, and the model call's span as its parent
    [sent] = [h for h in gateway.seen_headers() if h.get("cf-aig-event-id") == job]
    assert _parent(sent["traceparent"]) == (call.trace_id, call.span_id)

    # And the GenAI client metrics went to the receiver too: tokens by type, and the call's duration
    model = {"gen_ai.request.model": "openai/gpt-4o-mini", "gen_ai.provider.name": "openai"}

    def recorded(metric: str, **attrs: str) -> bool:
        want = {**model, **attrs}
        return any(
            p.metric == metric and p.count and want.items() <= p.attributes.items()
            for p in otlp_receiver.metric_points()
        )

    _eventually(lambda: recorded("gen_ai.client.token.usage", **{"gen_ai.token.type": "input"}))
    _eventually(lambda: recorded("gen_ai.client.token.usage", **{"gen_ai.token.type": "output"}))
    _eventually(lambda: recorded("gen_ai.client.operation.duration", **{"gen_ai.operation.name": "chat"}))


def test_a_theme_build_is_one_trace_over_its_five_agents(
    traced_worker: Any, otlp_receiver: OtlpReceiver, gateway: Any
) -> None:
    from adapters.store import LocalStore
    from pipelines.submit import submit_theme_build
    from pipelines.theme_build import save_catalog

    # Given a store's catalog snapshot in the traced worker's object store
    objects = LocalStore(traced_worker.store_dir)
    live = [p for p in sample_products(STORE) if any(v.get("available") for v in p["variants"])]
    save_catalog(objects, STORE, {"products": live[:16]})
    brief = {
        "description": "Rugged drinkware for the outdoors; warm and plain-spoken.",
        "audience": "campers",
    }
    # When the worker builds a theme
    job = submit_theme_build(traced_worker.broker, traced_worker.status, STORE, brief, objects=objects)
    info = wait_job(traced_worker.status, job, timeout_s=120)
    assert info["status"] == "done", info
    # Then one trace holds the job, a step per agent run and a model call per step (or two: a repair)
    job_span, agents, calls = _tree(_done(otlp_receiver, job, 5), job)
    assert job_span.name == "job theme_build"
    assert job_span.attributes["wandstore.cost_usd"] > 0
    assert {a.attributes["wandstore.agent"] for a in agents} == THEME_AGENTS
    assert len(calls) >= len(agents) >= 5
    assert {c.attributes["wandstore.pipeline"] for c in calls} == {"theme_build"}
    assert all(c.attributes["gen_ai.usage.output_tokens"] > 0 for c in calls)
    for agent in agents:
        mine = [c for c in calls if c.parent_id == agent.span_id]
        assert mine and {c.attributes["wandstore.agent"] for c in mine} == {
            agent.attributes["wandstore.agent"]
        }
    # And every model call of the job reached the gateway under its own span
    sent = {_parent(h["traceparent"]) for h in gateway.seen_headers() if h.get("cf-aig-event-id") == job}
    assert sent == {(c.trace_id, c.span_id) for c in calls}


TRACE_ID, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
# A route of the API process with the request middleware, enqueueing through the real submit path.
API_SCRIPT = """
import json, sys
from dramatiq.brokers.redis import RedisBroker
import redis
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from adapters.telemetry import flush, setup_tracing
from entrypoints.api.tracing import RequestTrace
from pipelines.status import JobStatus
from pipelines.submit import submit_product_copy

endpoint, redis_url, traceparent, product = sys.argv[1:5]
setup_tracing(endpoint, "api-under-test")
broker, status = RedisBroker(url=redis_url), JobStatus(redis.Redis.from_url(redis_url))

async def create(request):
    store, options = request.path_params["store"], {"force_fresh": True}
    job = submit_product_copy(broker, status, store, json.loads(product), options)
    return JSONResponse({"job": job})

routes = [Route("/v1/stores/{store}/generations", create, methods=["POST"])]
app = RequestTrace(Starlette(routes=routes), routes=routes)
answer = TestClient(app).post("/v1/stores/stanley1913/generations", headers={"traceparent": traceparent})
flush()
print(json.dumps(answer.json()))
"""


def test_a_job_continues_the_trace_of_the_request_that_enqueued_it(
    traced_worker: Any, otlp_receiver: OtlpReceiver
) -> None:
    import json
    import subprocess
    import sys

    # Given an API process exporting traces, and a caller whose own trace is under way
    caller = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
    product = json.dumps(sample_products(STORE)[5])
    argv = [sys.executable, "-c", API_SCRIPT, otlp_receiver.url, traced_worker.redis.url, caller, product]
    # When the caller's request enqueues a product copy
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    job = json.loads(done.stdout.strip().splitlines()[-1])["job"]
    assert wait_job(traced_worker.status, job, timeout_s=90)["status"] == "done"
    # Then the request's span continues the caller's trace, named by its route template
    spans = _done(otlp_receiver, job, 1)
    [request] = [s for s in spans if s.trace_id == TRACE_ID and s.parent_id == CALLER_SPAN]
    assert request.name == "POST /v1/stores/{store}/generations" and request.service == "api-under-test"
    assert request.attributes["http.response.status_code"] == 200
    # And the job's span is the request span's child: one trace down to the model call
    job_span, _, [call] = _tree(spans, job)
    assert (job_span.trace_id, job_span.parent_id) == (TRACE_ID, request.span_id)
    assert call.trace_id == TRACE_ID
