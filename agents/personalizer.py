"""The personalizer: a cohort and its candidate products in, a greeting and a ranking out."""

from __future__ import annotations

import re
from typing import Any

from adapters.logs import get_logger
from agents.base import Agent, OutputProblems
from agents.schemas.personalization import MAX_RANKED, MIN_RANKED, Personalization
from domain.sanitize import plain_text

log = get_logger("agents.personalizer")
_CODE_JUNK = re.compile(r"[^a-z0-9]+")


def reason_code(text: str) -> str:
    """A short snake_case code from whatever the model wrote."""
    return _CODE_JUNK.sub("_", plain_text(text).lower()).strip("_")[:32].rstrip("_")


class PersonalizerAgent(Agent[Personalization]):
    name = "personalizer"

    def variables(self, cohort: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any]:
        """Prompt inputs: the cohort's signals and the candidates, both as data (nothing personal)."""
        return {
            "cohort": cohort,
            "candidates": candidates,
            "max_products": min(12, len(candidates)),
        }

    def postprocess(self, output: Personalization, variables: dict[str, Any]) -> Personalization:
        known = {c["id"] for c in variables["candidates"]}
        ranked = list(dict.fromkeys(output.ranked_product_ids))
        valid = [pid for pid in ranked if pid in known][:MAX_RANKED]
        unknown = [pid for pid in ranked if pid not in known]
        if unknown:
            log.warning("personalizer_unknown_ids", dropped=len(unknown), kept=len(valid))
        # Unknown ids are dropped; if too few real ones remain, the model is asked again.
        if len(valid) < min(MIN_RANKED, len(known)):
            shown = ", ".join(repr(u[:40]) for u in unknown[:10])
            raise OutputProblems(
                [
                    f"field 'ranked_product_ids': {len(unknown)} id(s) are not in the candidate list "
                    f"({shown}); use only ids from the candidates, at least {min(MIN_RANKED, len(known))}"
                ]
            )
        codes = [c for c in (reason_code(x) for x in output.reason_codes) if c]
        # Built without re-validation: fields emptied by sanitizing are reported by check().
        return Personalization.model_construct(
            headline=plain_text(output.headline, 80),
            subheadline=plain_text(output.subheadline, 160),
            ranked_product_ids=valid,
            banner_text=plain_text(output.banner_text, 120),
            reason_codes=list(dict.fromkeys(codes))[:5],
        )

    def check(self, output: Personalization, variables: dict[str, Any]) -> None:
        problems = [
            f"field '{name}': empty after removing markup"
            for name in ("headline", "subheadline", "banner_text")
            if not getattr(output, name)
        ]
        if problems:
            raise OutputProblems(problems)
