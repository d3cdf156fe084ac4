"""AI Gateway headers: event id, request timeout, log payload, and `cf-aig-step` read back (dev gateway)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.settings import DEFAULT_PROMPTS_DIR
from agents.evals import load_cases
from agents.gateway import CallResult, GatewayClient, GatewayConfig
from agents.gateway_headers import call_headers, served_step
from agents.inputs import agent_class, variables_for
from agents.schemas.product_copy import ProductCopy
from agents.usage import CallContext
from tests.helpers import arun

MESSAGES = [
    {"role": "system", "content": "You write product copy. Answer with one JSON object."},
    {"role": "user", "content": "A 20 oz stainless steel tumbler with a flip straw."},
]


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def call(gw: GatewayClient, ctx: CallContext, model: str = "openai/gpt-4o-mini") -> CallResult:
    return arun(
        gw.complete(
            model=model,
            messages=MESSAGES,
            ctx=ctx,
            prompt_ref="product_copy@v1",
            response_model=ProductCopy,
            max_tokens=600,
            skip_cache=True,
        )
    )


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"])
def test_a_call_names_its_job_and_the_clients_timeout(gateway: Any, model: str) -> None:
    # Given a client whose timeout is 12.5 s (GATEWAY_TIMEOUT_S)
    gw = GatewayClient(GatewayConfig(base_url=gateway.base_url, timeout_s=12.5))
    # When a product copy job's call goes out
    result = call(gw, CallContext("stanley1913", "product_copy", job_id="job-42"), model)
    # Then the gateway saw the job id as the event id and the timeout in milliseconds, logs on
    sent = gateway.seen_headers()[-1]
    assert sent["cf-aig-event-id"] == "job-42"
    assert sent["cf-aig-request-timeout"] == "12500"
    assert "cf-aig-collect-log-payload" not in sent
    # And no trace context: no exporter is configured in this process
    assert "traceparent" not in sent
    # And the step that served (cf-aig-step) is read back
    assert result.step == 0


def test_personalization_keeps_the_shoppers_context_out_of_gateway_logs_by_default(gateway: Any) -> None:
    gw = GatewayClient(GatewayConfig(base_url=gateway.base_url))
    # When a personalization call goes out (under either spelling of the pipeline)
    call(gw, CallContext("stanley1913", "personalize", job_id="p-1"))
    call(gw, CallContext("stanley1913", "personalization", job_id="p-2"))
    # Then both ask the gateway not to log the payload
    assert [h.get("cf-aig-collect-log-payload") for h in gateway.seen_headers()[-2:]] == ["false"] * 2
    # And with GATEWAY_NO_LOG_PAYLOAD='[]' they are logged like any other call
    logged = GatewayClient(GatewayConfig(base_url=gateway.base_url, no_log_payload=()))
    call(logged, CallContext("stanley1913", "personalize", job_id="p-3"))
    assert "cf-aig-collect-log-payload" not in gateway.seen_headers()[-1]


def test_the_setting_reaches_the_client(monkeypatch: pytest.MonkeyPatch, gateway: Any) -> None:
    from adapters.settings import Settings
    from entrypoints.compose import gateway_config

    monkeypatch.setenv("GATEWAY_NO_LOG_PAYLOAD", '["product_copy"]')
    config = gateway_config(Settings())
    assert config.no_log_payload == ("product_copy",)
    ctx = CallContext("s", "product_copy")
    headers = call_headers(ctx, timeout_s=0.0004, no_log_payload=("product_copy",))
    # A call outside a job sends no event id; a timeout under a millisecond is sent as 1 ms
    assert headers == {"cf-aig-request-timeout": "1", "cf-aig-collect-log-payload": "false"}


def test_a_steps_number_goes_into_the_usage_record(services: Any, gateway: Any) -> None:
    # Given an agent run of product copy (a shipped eval case's input)
    agent = agent_class("product_copy")(services.runtime)
    case = load_cases(DEFAULT_PROMPTS_DIR / "product_copy" / "cases.jsonl")[0]
    prompt = services.runtime.prompts.get("product_copy")
    variables = variables_for(agent, case.input, prompt, {**case.options, "force_fresh": True})
    ctx = CallContext("stanley1913", "product_copy", job_id="job-step", force_fresh=True)
    run = arun(agent.run(ctx, variables))
    # Then its usage record carries the gateway's cf-aig-step, and its log line too
    assert [r.gateway_step for r in run.records] == [0] * len(run.records)
    assert run.records[-1].as_log()["gateway_step"] == 0
    assert gateway.seen_headers()[-1]["cf-aig-event-id"] == "job-step"


def test_a_missing_or_odd_step_header_is_none() -> None:
    assert served_step({}) is None
    assert served_step({"llm_provider-cf-aig-step": "x"}) is None
    assert served_step({"llm_provider-cf-aig-step": " 2 "}) == 2
