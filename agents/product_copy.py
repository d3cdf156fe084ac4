"""The product copywriter: one Shopify product in, storefront copy out."""

from __future__ import annotations

from typing import Any

from agents.base import Agent, OutputProblems
from agents.sanitize import clean_html, plain_text
from agents.schemas.product_copy import ImageAlt, ProductCopy
from agents.shopify import ShopifyProduct
from agents.tokens import count_text, truncate

MAX_IMAGES = 20
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
        fixed = count_text(str({k: v for k, v in facts.items() if k != "description"}), model)
        room = max(token_budget - fixed, 200)
        facts["description"] = truncate(facts["description"], room, model)
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
