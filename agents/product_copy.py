"""The product copywriter: one Shopify product in, storefront copy out."""

from __future__ import annotations

import json
from typing import Any

from adapters.errors import InvalidInput
from agents.base import Agent, OutputProblems
from agents.schemas.product_copy import ImageAlt, ProductCopy
from agents.shopify import ShopifyProduct
from agents.tokens import count_text, truncate
from domain.sanitize import clean_html, plain_text

MAX_IMAGES = 20
MIN_DESCRIPTION_TOKENS = 200  # what trimming the other facts leaves the description at least
SHORT_TEXT = 80  # title, vendor and product type, when they alone overflow the budget
DEFAULT_VOICE = "clear, warm and factual; no hype, no superlatives the facts don't support"


class ProductCopyAgent(Agent[ProductCopy]):
    name = "product_copy"

    def variables(
        self,
        product: ShopifyProduct,
        *,
        brand_voice: str | None,
        locale: str | None,
        model: str,
        token_budget: int,
    ) -> dict[str, Any]:
        """Prompt inputs: product facts as data, trimmed to the prompt's token budget."""
        facts = product.facts()
        fixed_text = str({k: v for k, v in facts.items() if k != "description"})
        # Bytes bound tokens from above: when they fit, nothing needs counting (most products).
        if len(fixed_text.encode()) + len(facts["description"].encode()) > token_budget:
            fixed = _rendered_tokens(facts, model)
            # The other facts must leave the description room: shorten them, never send past the budget.
            while fixed > token_budget - MIN_DESCRIPTION_TOKENS:
                if not _shorten(facts):
                    raise InvalidInput(
                        f"product {product.id} does not fit the prompt's input budget of "
                        f"{token_budget} tokens"
                    )
                fixed = _rendered_tokens(facts, model)
            facts["description"] = truncate(facts["description"], token_budget - fixed, model)
        return {
            "product": facts,
            "image_ids": [img["id"] for img in facts["images"]][:MAX_IMAGES],
            "brand_voice": plain_text(brand_voice or DEFAULT_VOICE, 300),
            "locale": plain_text(locale or "en", 16),
        }

    def postprocess(self, output: ProductCopy, variables: dict[str, Any]) -> ProductCopy:
        wanted = set(variables["image_ids"])
        alts = {a.image_id: plain_text(a.alt, 125) for a in output.image_alts if a.image_id in wanted}
        title = plain_text(output.title, 70)
        bullets = [b for b in (plain_text(x, 160) for x in output.bullets) if b]
        # Built without re-validation: fields emptied by sanitizing are reported by check().
        return ProductCopy.model_construct(
            title=title,
            description_html=clean_html(output.description_html),
            bullets=bullets,
            seo_title=plain_text(output.seo_title, 60),
            meta_description=plain_text(output.meta_description, 160),
            # Every image gets alt text: the model's, else a plain one from the title.
            image_alts=[
                ImageAlt(image_id=i, alt=alts.get(i) or plain_text(f"{title}, image {n}", 125))
                for n, i in enumerate(variables["image_ids"], start=1)
            ],
        )

    def check(self, output: ProductCopy, variables: dict[str, Any]) -> None:
        problems = []
        if not plain_text(output.description_html):
            problems.append("field 'description_html': empty after removing disallowed markup")
        if len(output.bullets) < 3:
            problems.append("field 'bullets': fewer than 3 left after removing markup")
        for name in ("title", "seo_title", "meta_description"):
            if not getattr(output, name):
                problems.append(f"field '{name}': empty after removing markup")
        if problems:
            raise OutputProblems(problems)


def _rendered_tokens(facts: dict[str, Any], model: str) -> int:
    """Tokens of the facts besides the description, as the prompt renders them (JSON, indent 1)."""
    rest = {k: v for k, v in facts.items() if k != "description"}
    return count_text(json.dumps(rest, ensure_ascii=False, indent=1), model)


def _shorten(facts: dict[str, Any]) -> bool:
    """Halve the largest part of the facts besides the description; False when nothing is left to cut.

    Image alts are blanked rather than dropped: every image still gets an alt in the output.
    """
    texts = ("title", "vendor", "product_type")
    sizes = {
        "tags": len(str(facts["tags"])) if facts["tags"] else 0,
        "variants": len(str(facts["variants"])) if facts["variants"] else 0,
        "options": len(str(facts["options"])) if facts["options"] else 0,
        "images": sum(len(i["alt"]) for i in facts["images"]),
        "texts": sum(len(facts[t]) for t in texts) if any(len(facts[t]) > SHORT_TEXT for t in texts) else 0,
    }
    part = max(sizes, key=lambda k: sizes[k])
    if not sizes[part]:
        return False
    if part == "images":
        described = [i for i in facts["images"] if i["alt"]]
        for image in described[len(described) // 2 :]:
            image["alt"] = ""
    elif part == "texts":
        for t in texts:
            facts[t] = facts[t][:SHORT_TEXT]
    else:
        facts[part] = facts[part][: len(facts[part]) // 2]
    return True
