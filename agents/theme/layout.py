"""The layout planner: brand and catalogue in, an ordered list of sections out."""

from __future__ import annotations

from typing import Any

from agents.base import Agent
from agents.schemas.theme import LayoutPlan
from agents.theme.inputs import StoreProduct
from domain.sanitize import plain_text
from domain.themes.catalogue import FIRST, LAST, MAX_SECTIONS, MIN_SECTIONS, SECTIONS
from domain.themes.checks import PRODUCT_SECTIONS

PROMPT_PRODUCTS = 24


class LayoutPlannerAgent(Agent[LayoutPlan]):
    name = "layout_planner"

    def variables(
        self,
        *,
        brand: dict[str, Any],
        products: list[StoreProduct],
        feedback: list[str] | None = None,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "brand": brand,
            "catalogue": [spec.brief() for spec in SECTIONS.values()],
            "products": [p.for_prompt() for p in products[:PROMPT_PRODUCTS]],
            "rules": {
                "first": FIRST,
                "last": LAST,
                "min_sections": MIN_SECTIONS,
                "max_sections": MAX_SECTIONS,
                "include_one_of": sorted(PRODUCT_SECTIONS),
            },
            "feedback": list(feedback or []),
            "previous": previous,
        }

    def postprocess(self, output: LayoutPlan, variables: dict[str, Any]) -> LayoutPlan:
        for section in output.sections:
            section.intent = plain_text(section.intent, 200) or SECTIONS[section.type].purpose
            section.product_ids = [plain_text(p, 64) for p in section.product_ids]
        output.rationale = plain_text(output.rationale, 300)
        return output
