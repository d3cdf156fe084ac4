"""The product copywriter: one Shopify product in, storefront copy out."""

from __future__ import annotations

from typing import Any

from agents.base import Agent, OutputProblems
from agents.sanitize import clean_html, plain_text
from agents.schemas.product_copy import ImageAlt, ProductCopy
from agents.shopify import ShopifyProduct
from agents.tokens import count_text, truncate

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
            "image_ids": [img["id"] for img in facts["images"]],
            "brand_voice": plain_text(brand_voice or DEFAULT_VOICE, 300),
            "locale": plain_text(locale or "en", 16),
        }

    def postprocess(self, output: ProductCopy, variables: dict[str, Any]) -> ProductCopy:
        wanted = set(variables["image_ids"])
        return ProductCopy(
            title=plain_text(output.title, 70),
            description_html=clean_html(output.description_html),
            bullets=[plain_text(b, 160) for b in output.bullets],
            seo_title=plain_text(output.seo_title, 60),
            meta_description=plain_text(output.meta_description, 160),
            image_alts=[
                ImageAlt(image_id=a.image_id, alt=plain_text(a.alt, 125))
                for a in output.image_alts
                if a.image_id in wanted
            ],
        )

    def check(self, output: ProductCopy, variables: dict[str, Any]) -> None:
        problems = []
        missing = [i for i in variables["image_ids"] if i not in {a.image_id for a in output.image_alts}]
        if missing:
            problems.append(f"field 'image_alts': missing alt text for image id(s) {', '.join(missing)}")
        if not plain_text(output.description_html):
            problems.append("field 'description_html': empty after removing disallowed markup")
        for name in ("title", "seo_title", "meta_description"):
            if not getattr(output, name):
                problems.append(f"field '{name}': empty after removing markup")
        if problems:
            raise OutputProblems(problems)
