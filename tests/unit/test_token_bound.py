"""The budget hold's token bound is never below tiktoken's count (agents/tokens.tokens_at_most)."""

from __future__ import annotations

import random

from adapters.settings import DEFAULT_PROMPTS_DIR
from agents.product_copy import ProductCopyAgent
from agents.prompts import PromptRegistry
from agents.runtime import AgentRuntime
from agents.schemas import OUTPUT_MODELS
from agents.shopify import parse_product
from agents.tokens import count_messages, tokens_at_most
from bench.catalog import samples

MODELS = ("openai/gpt-4o-mini", "anthropic/claude-haiku-4-5")


def test_the_bound_covers_every_sample_products_prompt() -> None:
    prompts = PromptRegistry(DEFAULT_PROMPTS_DIR, OUTPUT_MODELS)
    prompt = prompts.get("product_copy")
    agent = ProductCopyAgent(AgentRuntime(gateway=None, prompts=prompts))  # type: ignore[arg-type]
    for _, raw in samples():
        variables = agent.variables(
            parse_product(raw), brand_voice=None, locale=None, model=prompt.meta.model, token_budget=2500
        )
        messages = prompt.render(variables)
        for model in MODELS:
            exact = count_messages(messages, model)
            bound = tokens_at_most(messages, model)
            assert exact <= bound <= 4 * exact, (raw["id"], model, exact, bound)


def test_the_bound_covers_random_unicode_text() -> None:
    rng = random.Random(7)
    alphabet = "ab 09<>&\n\t:=é漢字😀\u00a0\u2028\x00"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        messages = [{"role": "system", "content": "You write copy."}, {"role": "user", "content": text}]
        for model in MODELS:
            assert count_messages(messages, model) <= tokens_at_most(messages, model)
