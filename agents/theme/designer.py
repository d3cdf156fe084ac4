"""The designer: brand in, design tokens out (palette by role, type scale, shape)."""

from __future__ import annotations

from typing import Any

from agents.base import Agent
from agents.schemas.theme import DesignTokens
from agents.theme.inputs import ThemeBrief
from domain.i18n import normalize
from domain.sanitize import plain_text
from domain.themes.catalogue import CONTRAST_RULES, FONT_STACKS, HEADING_ONLY_FONTS
from domain.themes.css import ALLOWED_PROPERTIES
from domain.themes.hue import HUED_ROLES, MAX_HUE_DISTANCE, hint_colours, hued


class ThemeDesignerAgent(Agent[DesignTokens]):
    name = "theme_designer"

    def variables(
        self,
        *,
        brand: dict[str, Any],
        brief: ThemeBrief,
        feedback: list[str] | None = None,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        hint = plain_text(brief.palette_hint or "", 200)
        named = hued(hint_colours(hint))
        return {
            "brand": brand,
            "palette_hint": hint,
            # Parsed here so the model aims at the same colours the hue check measures.
            "hint_colours": ", ".join(c.label() for c in named),
            "hue_rule": (
                f"{' and '.join(HUED_ROLES)} each within {MAX_HUE_DISTANCE:g}° of the hue of one of "
                "these; neutrals the hint names suit background, surface and text"
                if named
                else ""
            ),
            "locale": normalize(brief.locale),
            "fonts": [
                {"name": name, "style": desc, "headings_only": name in HEADING_ONLY_FONTS}
                for name, (_, desc) in FONT_STACKS.items()
            ],
            "contrast_rules": [
                f"{r.fg} on {r.bg}: at least {r.minimum:g}:1 ({r.why})" for r in CONTRAST_RULES
            ],
            "css_properties": sorted(ALLOWED_PROPERTIES),
            "feedback": list(feedback or []),
            "previous": previous,
        }

    def postprocess(self, output: DesignTokens, variables: dict[str, Any]) -> DesignTokens:
        # Colours are schema-checked hex; the CSS fields are parsed later, never pasted.
        output.palette = output.palette.model_copy(
            update={k: v.lower() for k, v in output.palette.model_dump().items()}
        )
        output.rationale = plain_text(output.rationale, 400)
        return output
