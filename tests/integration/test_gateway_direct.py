"""OpenAI-format calls without litellm (agents/openai_http.py) behave exactly as through litellm."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.errors import PermanentGatewayError, RateLimited, TransientGatewayError
from agents.gateway import CallResult, GatewayClient, GatewayConfig
from agents.schemas.product_copy import ProductCopy
from agents.usage import CallContext
from tests.helpers import arun

MODEL = "openai/gpt-4o-mini"
CTX = CallContext(store="stanley1913", pipeline="product_copy", job_id="job-1")
MESSAGES = [
    {"role": "system", "content": "You write product copy. Answer with one JSON object."},
    {"role": "user", "content": "A 20 oz stainless steel tumbler with a flip straw."},
]


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def clients(gateway: Any, timeout_s: float = 10.0) -> dict[str, GatewayClient]:
    def make(direct: bool) -> GatewayClient:
        return GatewayClient(
            GatewayConfig(base_url=gateway.base_url, timeout_s=timeout_s, openai_direct=direct)
        )

    return {"direct": make(True), "litellm": make(False)}


def call(client: GatewayClient, **kw: Any) -> CallResult:
    return arun(
        client.complete(
            model=MODEL,
            messages=MESSAGES,
            ctx=CTX,
            prompt_ref="product_copy@v1",
            response_model=ProductCopy,
            temperature=0.4,
            max_tokens=600,
            **kw,
        )
    )


def test_direct_and_litellm_calls_return_the_same_result(gateway: Any) -> None:
    # Given the same request sent both ways, with a gateway cache key
    results = {}
    for name, client in clients(gateway).items():
        gateway.reset()
        first = call(client, cache_ttl=3600, cache_key="k1")
        again = call(client, cache_ttl=3600, cache_key="k1")
        arun(client.aclose())
        results[name] = (first, again)
    direct, via_litellm = results["direct"], results["litellm"]
    # Then both read a valid answer, the same prompt tokens, cache statuses and costs
    # (the dev gateway's answer depends on the exact request bytes, which differ)
    for d, v in zip(direct, via_litellm, strict=True):
        assert ProductCopy.model_validate_json(d.text) and ProductCopy.model_validate_json(v.text)
        assert d.usage.prompt_tokens == v.usage.prompt_tokens > 0
        assert d.usage.completion_tokens > 0 and v.usage.completion_tokens > 0
        assert d.cache_status == v.cache_status
        assert d.log_id and v.log_id
    assert [r.cache_status for r in direct] == ["MISS", "HIT"]
    assert direct[0].cost_nano > 0 and direct[1].cost_nano == 0 == via_litellm[1].cost_nano
    assert direct[1].text == direct[0].text


@pytest.mark.parametrize("name", ["direct", "litellm"])
def test_gateway_faults_become_the_same_project_errors(gateway: Any, name: str) -> None:
    client = clients(gateway, timeout_s=0.5)[name]
    # Given a 429 with retry-after: a rate limit that says how long to wait
    gateway.faults([{"kind": "429", "retry_after": 3}])
    with pytest.raises(RateLimited) as limited:
        call(client)
    assert limited.value.retry_after == 3
    # Given a 5xx, an HTML body, half a body, or no answer in time: transient, retried by Dramatiq
    for fault in ({"kind": "503"}, {"kind": "malformed_json"}, {"kind": "truncated"}, {"kind": "timeout"}):
        gateway.faults([fault])
        with pytest.raises(TransientGatewayError):
            call(client)
    # Given a refusal (bad key): permanent, with the hint
    gateway.faults([{"kind": "401"}])
    with pytest.raises(PermanentGatewayError, match="check AI_GATEWAY_TOKEN"):
        call(client)
    # And one request per call: no retries underneath
    assert gateway.stats()["requests"] == 6
    arun(client.aclose())


def test_concurrent_calls_share_the_pool_and_the_gateway_counts_them_in_flight(gateway: Any) -> None:
    import asyncio

    client = clients(gateway)["direct"]
    # Given a gateway that takes 300 ms per answer
    gateway.config(latency_ms=300)

    async def many() -> list[CallResult]:
        return list(
            await asyncio.gather(
                *(
                    client.complete(model=MODEL, messages=MESSAGES, ctx=CTX, prompt_ref="p@v1", max_tokens=50)
                    for _ in range(12)
                )
            )
        )

    # When 12 calls are made at once
    results = arun(many())
    arun(client.aclose())
    # Then all 12 were in flight together, and none is left
    stats = gateway.stats()
    assert len(results) == 12 and stats["model_calls"] == 12
    assert stats["peak_in_flight"] == 12 and stats["in_flight"] == 0
