"""The dev gateway as a rate-limited, sometimes failing provider: RPM/TPM per model, providers down."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def chat(gateway: Any, model: str = "gpt-4o-mini", max_tokens: int = 100, provider: str = "openai") -> Any:
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    body["messages"] = [{"role": "user", "content": "A tumbler with a straw."}]
    path = "/openai/chat/completions" if provider == "openai" else "/anthropic/v1/messages"
    return httpx.post(gateway.base_url + path, json=body, timeout=10)


def test_the_token_budget_answers_429_with_openais_headers(gateway: Any) -> None:
    # Given 1,000 tokens a minute with a 1 s burst (about 17 tokens of room)
    gateway.config(rate_limits={"openai/gpt-4o-mini": {"tpm": 1000}}, burst_s=1.0)
    # When two calls of ~110 tokens come at once
    first, second = chat(gateway), chat(gateway)
    # Then the first passes (into debt) and says what is left; the second waits ~6.6 s for its turn
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    assert first.headers["x-ratelimit-remaining-tokens"] == "0"
    assert second.status_code == 429 and second.json()["error"]["code"] == "rate_limit_exceeded"
    assert 5.0 <= float(second.headers["retry-after"]) <= 7.0
    assert int(second.headers["retry-after-ms"]) >= 5000
    assert gateway.stats()["rate_limited"] == 1
    # and other models are not limited
    assert chat(gateway, model="gpt-4.1-mini").status_code == 200


def test_a_provider_marked_down_answers_503(gateway: Any) -> None:
    # Given Anthropic marked down
    gateway.config(down=["anthropic"])
    # Then its calls fail with 503 in Anthropic's error shape, and OpenAI's still pass
    down = chat(gateway, model="claude-haiku-4-5", provider="anthropic")
    assert down.status_code == 503 and down.json()["type"] == "error"
    assert chat(gateway).status_code == 200
    assert gateway.config()["down"] == ["anthropic"]
    # and a reset brings it back
    gateway.reset()
    assert chat(gateway, model="claude-haiku-4-5", provider="anthropic").status_code == 200


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"rate_limits": {"gpt-4o-mini": {"rpm": 0}}}, "rpm must be a positive integer"),
        ({"rate_limits": {"gpt-4o-mini": {"rps": 5}}}, "rpm and/or tpm"),
        ({"burst_s": -1}, "burst_s must be a positive number"),
        ({"down": ["azure"]}, "down must be a list of providers"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(gateway: Any, payload: dict[str, Any], error: str) -> None:
    response = httpx.post(gateway.url + "/_dev/config", json=payload, timeout=10)
    assert response.status_code == 400 and error in response.json()["error"]
