"""The critic: reviews the whole theme and may send named parts back for one more round."""

from __future__ import annotations

from typing import Any

from agents.base import Agent
from agents.schemas.theme import Critique, Revision
from domain.sanitize import plain_text


class ThemeCriticAgent(Agent[Critique]):
    name = "theme_critic"

    def variables(
        self,
        *,
        brief: dict[str, str],
        brand: dict[str, Any],
        design: dict[str, Any],
        sections: list[dict[str, Any]],
        round_no: int,
    ) -> dict[str, Any]:
        return {"brief": brief, "brand": brand, "design": design, "sections": sections, "round": round_no}

    def postprocess(self, output: Critique, variables: dict[str, Any]) -> Critique:
        present = {s["type"] for s in variables["sections"]}
        revisions = []
        for r in output.revisions:
            problem = plain_text(r.problem, 300)
            # A copy note must name a section that is on the page; others can't be acted on.
            if not problem or (r.part == "copy" and r.section not in present):
                continue
            revisions.append(Revision.model_construct(part=r.part, section=r.section, problem=problem))
        return Critique.model_construct(
            approved=output.approved, summary=plain_text(output.summary, 400), revisions=revisions
        )
