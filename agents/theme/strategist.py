"""The brand strategist: brief and products in, positioning, tone and keywords out."""

from __future__ import annotations

from typing import Any

from agents.base import Agent
from agents.schemas.theme import BrandStrategy
from agents.theme.inputs import StoreProduct, ThemeBrief
from domain.i18n import normalize
from domain.sanitize import plain_text

PROMPT_PRODUCTS = 24


def _words(values: list[str], limit: int) -> list[str]:
    return [w for w in (plain_text(v, limit) for v in values) if w]


class BrandStrategistAgent(Agent[BrandStrategy]):
    name = "brand_strategist"

    def variables(
        self, *, store_name: str, brief: ThemeBrief, products: list[StoreProduct]
    ) -> dict[str, Any]:
        return {
            "store_name": plain_text(store_name, 80),
            "brief": brief.as_data(),
            "locale": normalize(brief.locale),
            "products": [p.for_prompt(with_id=False) for p in products[:PROMPT_PRODUCTS]],
        }

    def postprocess(self, output: BrandStrategy, variables: dict[str, Any]) -> BrandStrategy:
        brief = variables["brief"]
        return BrandStrategy.model_construct(
            # An emptied field falls back to the merchant's own words rather than failing the build.
            positioning=plain_text(output.positioning, 300) or plain_text(brief["description"], 300),
            audience=plain_text(output.audience, 200) or plain_text(brief.get("audience", ""), 200),
            tone=_words(output.tone, 40),
            keywords=_words(output.keywords, 40),
            voice=plain_text(output.voice, 400) or plain_text(brief.get("tone", ""), 400),
            visual_direction=plain_text(output.visual_direction, 300),
        )
