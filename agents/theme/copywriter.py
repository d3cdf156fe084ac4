"""The section copywriter: one section's words, one call per section (run in parallel)."""

from __future__ import annotations

from typing import Any

from agents.base import Agent
from agents.schemas.theme import CopyItem, SectionCopy
from agents.theme.inputs import StoreProduct
from domain.i18n import normalize
from domain.sanitize import plain_text
from domain.themes.catalogue import SectionSpec


class SectionCopywriterAgent(Agent[SectionCopy]):
    name = "section_copywriter"

    def variables(
        self,
        *,
        spec: SectionSpec,
        intent: str,
        brand: dict[str, Any],
        store_name: str,
        products: list[StoreProduct],
        feedback: list[str] | None = None,
        previous: dict[str, Any] | None = None,
        locale: str | None = None,
    ) -> dict[str, Any]:
        return {
            "locale": normalize(locale),
            "section": {**spec.brief(), "intent": plain_text(intent, 200)},
            "brand": brand,
            "store_name": plain_text(store_name, 80),
            "products": [p.for_prompt(with_id=False) for p in products],
            "feedback": list(feedback or []),
            "previous": previous,
        }

    def postprocess(self, output: SectionCopy, variables: dict[str, Any]) -> SectionCopy:
        # Plain text only: the project's templates escape it again when they render it.
        # Limits are the section's, checked (with numbers) by the pipeline, not here.
        return SectionCopy.model_construct(
            heading=plain_text(output.heading, 90),
            subheading=plain_text(output.subheading, 200),
            body=plain_text(output.body, 700),
            cta_label=plain_text(output.cta_label, 32),
            items=[
                CopyItem.model_construct(title=plain_text(i.title, 80), text=plain_text(i.text, 300))
                for i in output.items
            ],
        )
