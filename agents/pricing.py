"""Prices from litellm's table (bundled, never downloaded), with configured overrides."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from adapters.errors import PermanentGatewayError
from agents._litellm import litellm
from agents.usage import Usage, usd_to_nano


@dataclass(frozen=True)
class Price:
    """USD per token for each kind of token."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write: Decimal

    def cost(self, usage: Usage) -> Decimal:
        uncached = max(usage.prompt_tokens - usage.cached_prompt_tokens - usage.cache_write_tokens, 0)
        return (
            uncached * self.input
            + usage.cached_prompt_tokens * self.cached_input
            + usage.cache_write_tokens * self.cache_write
            + usage.completion_tokens * self.output
        )

    def cost_nano(self, usage: Usage) -> int:
        return usd_to_nano(self.cost(usage))

    def worst_case(self, prompt_tokens: int, max_tokens: int) -> Decimal:
        return prompt_tokens * max(self.input, self.cache_write) + max_tokens * self.output


def _dec(value: Any) -> Decimal:
    # str() of the float keeps the table's literal (1.5e-07), so no binary drift.
    return Decimal(str(value)) if value is not None else Decimal(0)


def _bare(model: str) -> str:
    return model.split("/", 1)[1] if "/" in model else model


def price_for(model: str, overrides: dict[str, dict[str, float]] | None = None) -> Price:
    """The price of `model` ("openai/gpt-4o-mini"); overrides are keyed by either name."""
    override = (overrides or {}).get(model) or (overrides or {}).get(_bare(model))
    table = litellm().model_cost.get(_bare(model)) or litellm().model_cost.get(model)
    if table is None and override is None:
        raise PermanentGatewayError(
            f"no price known for model {model!r}: add it to PRICE_OVERRIDES "
            '(e.g. {"%s": {"input": 1e-06, "output": 2e-06}})' % model
        )
    table = table or {}
    override = override or {}
    inp = _dec(override.get("input", table.get("input_cost_per_token")))
    return Price(
        input=inp,
        output=_dec(override.get("output", table.get("output_cost_per_token"))),
        cached_input=_dec(
            override.get(
                "cached_input", table.get("cache_read_input_token_cost", table.get("input_cost_per_token"))
            )
        ),
        cache_write=_dec(
            override.get(
                "cache_write", table.get("cache_creation_input_token_cost", table.get("input_cost_per_token"))
            )
        ),
    )
