"""The gateway client against the dev gateway: results, cache accounting, errors, both providers."""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.errors import PermanentGatewayError, RateLimited, TransientGatewayError
from agents.gateway import CallResult, GatewayClient, GatewayConfig, ProviderDown, translate_error
from agents.schemas.product_copy import ProductCopy
from agents.usage import CallContext
from tests.helpers import arun

ROOT = Path(__file__).resolve().parents[2]
OPENAI = "openai/gpt-4o-mini"
ANTHROPIC = "anthropic/claude-sonnet-4-5"
CTX = CallContext(store="stanley1913", pipeline="product_copy", job_id="job-1")
MESSAGES = [
    {"role": "system", "content": "You write product copy. Answer with one JSON object."},
    {"role": "user", "content": "A 20 oz stainless steel tumbler with a flip straw."},
]


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def client(gateway: Any, timeout_s: float = 10.0) -> GatewayClient:
    return GatewayClient(GatewayConfig(base_url=gateway.base_url, timeout_s=timeout_s))


def call(client: GatewayClient, model: str = OPENAI, **kw: Any) -> CallResult:
    return arun(
        client.complete(
            model=model,
            messages=MESSAGES,
            ctx=CTX,
            prompt_ref="product_copy@v1",
            response_model=ProductCopy,
            temperature=0.4,
            max_tokens=600,
            **kw,
        )
    )


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC])
def test_a_gateway_cache_hit_is_read_from_the_response_header_and_costs_nothing(
    gateway: Any, model: str
) -> None:
    gw = client(gateway)
    # Given the same request twice, with a gateway cache key
    first = call(gw, model, cache_ttl=3600, cache_key="k1")
    again = call(gw, model, cache_ttl=3600, cache_key="k1")
    # Then both are valid structured answers with the gateway's token counts and log ids
    for result in (first, again):
        assert ProductCopy.model_validate_json(result.text)
        assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
        assert result.log_id and result.provider == model.split("/")[0]
    # and the second was served by the gateway's cache (cf-aig-cache-status: HIT): cost 0
    assert [first.cache_status, again.cache_status] == ["MISS", "HIT"]
    assert first.cost_nano > 0 and again.cost_nano == 0
    assert again.text == first.text and gateway.stats()["cache_hits"] == 1


def test_gateway_faults_become_the_project_errors(gateway: Any) -> None:
    gw = client(gateway, timeout_s=0.5)
    # Given a 429 with retry-after: a rate limit that says how long to wait
    gateway.faults([{"kind": "429", "retry_after": 3}])
    with pytest.raises(RateLimited) as limited:
        call(gw)
    assert limited.value.retry_after == 3
    # Given a 5xx, an HTML body, half a body, or no answer in time: transient, retried by Dramatiq
    for fault in ({"kind": "503"}, {"kind": "malformed_json"}, {"kind": "truncated"}, {"kind": "timeout"}):
        gateway.faults([fault])
        with pytest.raises(TransientGatewayError):
            call(gw)
    # Given a refusal (bad key): permanent, with the hint
    gateway.faults([{"kind": "401"}])
    with pytest.raises(PermanentGatewayError, match="check AI_GATEWAY_TOKEN"):
        call(gw)
    # And one request per call: no retries underneath
    assert gateway.stats()["requests"] == 6


def test_litellm_exceptions_map_by_type() -> None:
    import httpx
    import litellm

    request = httpx.Request("POST", "https://gateway.example/openai/chat/completions")
    args = {"message": "m", "llm_provider": "openai", "model": "gpt-4o-mini"}
    # Given litellm's own exception types (raised as a call would raise them)
    cases: list[tuple[Exception, type[Exception]]] = [
        (litellm.RateLimitError(**args), RateLimited),
        (litellm.Timeout(**args), TransientGatewayError),
        (litellm.APIConnectionError(**args, request=request), ProviderDown),
        (litellm.ServiceUnavailableError(**args), TransientGatewayError),
        (litellm.InternalServerError(**args), TransientGatewayError),
        (litellm.AuthenticationError(**args), PermanentGatewayError),
        (litellm.BadRequestError(**args), PermanentGatewayError),
        (litellm.ContextWindowExceededError(**args), PermanentGatewayError),
        (litellm.NotFoundError(**args), PermanentGatewayError),
        (ValueError("anything else"), TransientGatewayError),
    ]
    # Then each becomes the project's error of its kind (no connection is a provider down: a
    # transient error that counts towards its model's down mark; so is a 5xx the provider
    # answered with headers, see test_pacing), and nothing from litellm escapes
    for exc, expected in cases:
        got = translate_error(exc)
        assert type(got) is expected, (type(exc).__name__, type(got).__name__)
        assert not isinstance(got, litellm.exceptions.OpenAIError)


def test_concurrent_calls_are_all_in_flight_together(gateway: Any) -> None:
    gw = client(gateway)
    # Given a gateway that takes 300 ms per answer
    gateway.config(latency_ms=300)

    async def many() -> list[CallResult]:
        return list(
            await asyncio.gather(
                *(
                    gw.complete(model=OPENAI, messages=MESSAGES, ctx=CTX, prompt_ref="p@v1", max_tokens=50)
                    for _ in range(12)
                )
            )
        )

    # When 12 calls are made at once
    results = arun(many())
    # Then all 12 were in flight together, and none is left
    stats = gateway.stats()
    assert len(results) == 12 and stats["model_calls"] == 12
    assert stats["peak_in_flight"] == 12 and stats["in_flight"] == 0


CLI_LIKE = """
import asyncio, sys
from agents.gateway import GatewayClient, GatewayConfig
from agents.usage import CallContext

gateway = GatewayClient(GatewayConfig(base_url=sys.argv[1]))


async def main() -> None:
    try:
        for model in sys.argv[3:]:
            await gateway.complete(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=20,
                ctx=CallContext(store="s", pipeline="p", job_id="j"), prompt_ref="p@v1",
            )
    finally:
        if sys.argv[2] == "close":
            await gateway.aclose()

asyncio.run(main())
"""


@pytest.mark.parametrize("close", [True, False])
def test_a_process_that_closes_its_client_exits_without_unclosed_sessions(gateway: Any, close: bool) -> None:
    # Given a process that calls both providers on one `asyncio.run` loop, as the CLI does
    argv = [sys.executable, "-c", CLI_LIKE, gateway.base_url, "close" if close else "keep", OPENAI, ANTHROPIC]
    # When it ends, having closed its gateway client or not
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    # Then aiohttp reports no unclosed session at exit, unless the client was left open
    assert ("Unclosed" in done.stderr or "ClientSession.__del__" in done.stderr) is not close, done.stderr[
        -2000:
    ]


def test_litellm_is_the_pinned_version() -> None:
    # The gateway client reads `ModelResponse.hidden_params["additional_headers"]` and litellm's
    # `llm_provider-` prefix for the gateway's headers: check both again when the pin moves.
    pyproject = (ROOT / "pyproject.toml").read_text()
    pinned = re.search(r'"litellm==([^"]+)"', pyproject)
    assert pinned and importlib.metadata.version("litellm") == pinned.group(1)
