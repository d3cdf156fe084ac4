"""What one personalization (or product-copy) model call costs: its tokens, estimated from the prompt.

The tokens come from rendering the production prompt the way the service does (the sample
stores' real products as candidates, the service's own shortlist and variables) and counting
them with the service's estimator (`agents.tokens`, the count its budget check makes), plus
the output model's JSON schema, which the request carries as `response_format`. The answer
is a typical one for the output model, written out and counted the same way. Prices are
`agents.pricing`'s list prices (litellm's bundled table), with no prompt-cache discount: the
prefix every call shares is the system message and the schema, under OpenAI's 1,024-token
minimum for cached input, and the prompt sets no Anthropic cache breakpoint.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from decimal import Decimal
from statistics import mean
from typing import Any, cast

from adapters.settings import DEFAULT_PROMPTS_DIR
from agents.prompts import Prompt, PromptRegistry
from agents.schemas import OUTPUT_MODELS
from agents.tokens import count_messages, count_text
from agents.usage import Usage
from bench.catalog import SAMPLE_STORES, sample

# The two list prices the seed's budget is judged at, and the model the personalizer prompt names.
GPT = "openai/gpt-4o-mini"
HAIKU = "anthropic/claude-haiku-4-5"
MODELS = (GPT, HAIKU)

# A typical personalizer answer: 12 featured ids (the prompt's `max_products`), the text
# fields at about two thirds of their limits, three reason codes.
_HEADLINE = "Fresh picks for your next adventure outdoors"
_SUBHEADLINE = (
    "Tumblers and bottles that keep drinks cold all day, picked from what shoppers like you browse."
)
_BANNER = "New colours just landed: find your favourite before it sells out."
_REASONS = ["top_category_match", "mobile_shopper", "from_social"]

# A typical product-copy answer: lengths of the kind the copy prompt's cases accept.
_COPY_ANSWER = {
    "title": "Stainless Steel Insulated Tumbler with Flip Straw, 20 oz",
    "description_html": "<p>" + "Keeps drinks cold for hours and fits most cup holders. " * 10 + "</p>",
    "bullets": ["Double-wall vacuum insulation keeps drinks cold for up to 12 hours"] * 4,
    "seo_title": "Insulated Flip Straw Tumbler 20 oz | Leakproof",
    "meta_description": "A 20 oz insulated tumbler with a leakproof flip straw lid that keeps drinks cold "
    "all day and fits most car cup holders.",
    "image_alts": [{"image_id": "1", "alt": "Tumbler with flip straw lid in blue, seen from the side"}] * 3,
}


@dataclass(frozen=True)
class CallTokens:
    """Mean tokens of one call of a prompt, and how they were estimated."""

    prompt_ref: str
    prompt_model: str
    prompt_tokens: int
    completion_tokens: int
    samples: int

    def usage(self) -> Usage:
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)


@functools.cache
def prompts() -> PromptRegistry:
    return PromptRegistry(DEFAULT_PROMPTS_DIR, OUTPUT_MODELS)


def _schema_tokens(prompt: Prompt, model: str) -> int:
    from agents.gateway import response_format_for

    return count_text(json.dumps(response_format_for(prompt.output_model)), model)


@functools.cache
def personalizer_tokens(model: str = GPT) -> CallTokens:
    """Tokens of one personalizer call: every sample store, cohorts with 0, 1 and 2 top categories."""
    from agents.personalizer import PersonalizerAgent
    from pipelines.catalog_snapshot import build_snapshot, parse_snapshot
    from pipelines.cohorts import cohort_of, parse_context, shortlist

    prompt = prompts().get(PersonalizerAgent.name)
    # `variables` needs no runtime (the agent would only use it to call the model).
    agent = PersonalizerAgent(cast(Any, None))
    schema = _schema_tokens(prompt, model)
    prompt_counts, completion_counts = [], []
    for store in SAMPLE_STORES:
        catalog = parse_snapshot(build_snapshot(store, {"products": list(sample(store))}))
        by_category: dict[str, list[str]] = {}
        for product in catalog.products:
            by_category.setdefault(product.category, []).append(product.id)
        ids = [group[0] for group in by_category.values()]
        for viewed in ([], ids[:1], ids[:2]):
            context = {"segment": "returning", "locale": "en-us", "device": "iPhone", "viewed": viewed}
            cohort = cohort_of(parse_context(context), catalog)
            picks = shortlist(catalog, cohort)
            variables = agent.variables(cohort.signals(), [c.prompt_row for c in picks])
            prompt_counts.append(count_messages(prompt.render(variables), model) + schema)
            answer = {
                "headline": _HEADLINE,
                "subheadline": _SUBHEADLINE,
                "ranked_product_ids": [c.id for c in picks[: variables["max_products"]]],
                "banner_text": _BANNER,
                "reason_codes": _REASONS,
            }
            completion_counts.append(count_text(json.dumps(answer), model))
    return CallTokens(
        prompt.ref,
        prompt.meta.model,
        round(mean(prompt_counts)),
        round(mean(completion_counts)),
        len(prompt_counts),
    )


@functools.cache
def product_copy_tokens(model: str = GPT) -> CallTokens:
    """Tokens of one product-copy call over every sample product (the production prompt)."""
    from agents.product_copy import ProductCopyAgent
    from agents.shopify import parse_product

    prompt = prompts().get(ProductCopyAgent.name)
    agent = ProductCopyAgent(cast(Any, None))
    schema = _schema_tokens(prompt, model)
    counts = []
    for store in SAMPLE_STORES:
        for raw in sample(store):
            variables = agent.variables(
                parse_product(raw),
                brand_voice=None,
                locale=None,
                model=prompt.meta.model,
                token_budget=prompt.meta.input_token_budget or 2500,
            )
            counts.append(count_messages(prompt.render(variables), model) + schema)
    completion = count_text(json.dumps(_COPY_ANSWER), model)
    return CallTokens(prompt.ref, prompt.meta.model, round(mean(counts)), completion, len(counts))


@functools.cache
def per_call_usd(model: str, pipeline: str = "personalization") -> Decimal:
    """List price of one call of `pipeline` on `model`, from the project's price table."""
    from agents.pricing import price_for

    tokens = personalizer_tokens(model) if pipeline == "personalization" else product_copy_tokens(model)
    return price_for(model).cost(tokens.usage())
