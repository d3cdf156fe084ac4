"""What the project ships for themes: the section catalogue, font stacks and contrast rules.

Models choose from these; they never invent a section type, a font file or a colour role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

SectionType = Literal[
    "hero", "featured_collection", "product_grid", "story", "testimonials", "newsletter", "footer"
]

# The copy fields every section shares; a section uses some of them (limit > 0).
COPY_FIELDS = ("heading", "subheading", "body", "cta_label")


@dataclass(frozen=True)
class SectionSpec:
    """One section type: what it is for, its copy limits (characters) and what it needs."""

    type: str
    label: str
    purpose: str
    limits: dict[str, int]
    required: tuple[str, ...] = ("heading",)
    items: tuple[int, int] = (0, 0)  # how many copy items (min, max)
    item_limits: dict[str, int] = field(default_factory=dict)
    products: int = 0  # how many products the section shows
    default_cta: str = ""
    sample_content: bool = False  # the copy is a placeholder the merchant replaces

    def limit(self, name: str) -> int:
        return self.limits.get(name, 0)

    def brief(self) -> dict[str, object]:
        """The spec as data for a prompt."""
        out: dict[str, object] = {
            "type": self.type,
            "purpose": self.purpose,
            "max_characters": {k: v for k, v in self.limits.items() if v},
            "required": list(self.required),
        }
        if self.items[1]:
            out["items"] = {"min": self.items[0], "max": self.items[1], "max_characters": self.item_limits}
        if self.products:
            out["shows_products"] = self.products
        if self.sample_content:
            out["note"] = "sample content: the merchant replaces it with real reviews"
        return out


SECTIONS: dict[str, SectionSpec] = {
    s.type: s
    for s in (
        SectionSpec(
            "hero",
            "Hero",
            "the first screen: the brand's promise in one line, a supporting line and one call to action",
            {"heading": 60, "subheading": 140, "cta_label": 24},
            required=("heading", "subheading", "cta_label"),
            products=1,
            default_cta="Shop now",
        ),
        SectionSpec(
            "featured_collection",
            "Featured collection",
            "a short edit of a few products with a heading that says why they belong together",
            {"heading": 50, "subheading": 120, "cta_label": 24},
            products=4,
            default_cta="View the collection",
        ),
        SectionSpec(
            "product_grid",
            "Product grid",
            "a grid of the store's products with a plain heading",
            {"heading": 50, "subheading": 120, "cta_label": 24},
            products=8,
            default_cta="Shop all",
        ),
        SectionSpec(
            "story",
            "Brand story",
            "who makes this and why, in two or three short paragraphs",
            {"heading": 60, "subheading": 120, "body": 600, "cta_label": 24},
            required=("heading", "body"),
            default_cta="Our story",
        ),
        SectionSpec(
            "testimonials",
            "Testimonials",
            "short customer quotes; written as clearly marked samples the merchant replaces",
            {"heading": 50},
            items=(2, 3),
            item_limits={"title": 40, "text": 220},
            sample_content=True,
        ),
        SectionSpec(
            "newsletter",
            "Newsletter",
            "an invitation to join the mailing list, with what subscribers get",
            {"heading": 50, "body": 160, "cta_label": 20},
            required=("heading", "cta_label"),
            default_cta="Subscribe",
        ),
        SectionSpec(
            "footer",
            "Footer",
            "a closing line in the brand's voice and one or two sentences about the store",
            {"heading": 60, "body": 200},
        ),
    )
}

MIN_SECTIONS, MAX_SECTIONS = 4, 7
FIRST, LAST = "hero", "footer"

# System font stacks only: no font files, no network, nothing to download.
FONT_STACKS: dict[str, tuple[str, str]] = {
    "transitional": ("Charter, 'Bitstream Charter', 'Sitka Text', Cambria, serif", "sturdy, bookish serif"),
    "old-style": (
        "'Iowan Old Style', 'Palatino Linotype', 'URW Palladio L', P052, serif",
        "warm, editorial serif",
    ),
    "didone": (
        "Didot, 'Bodoni MT', 'Noto Serif Display', 'URW Palladio L', P052, Sylfaen, serif",
        "high-contrast fashion serif (headings only)",
    ),
    "humanist": (
        "Seravek, 'Gill Sans Nova', Ubuntu, Calibri, 'DejaVu Sans', source-sans-pro, sans-serif",
        "friendly, readable sans",
    ),
    "geometric": (
        "Avenir, Montserrat, Corbel, 'URW Gothic', source-sans-pro, sans-serif",
        "clean geometric sans",
    ),
    "neo-grotesque": (
        "Inter, Roboto, 'Helvetica Neue', 'Arial Nova', 'Nimbus Sans', Arial, sans-serif",
        "neutral modern sans",
    ),
    "rounded": (
        "ui-rounded, 'Hiragino Maru Gothic ProN', Quicksand, Comfortaa, Manjari, "
        "'Arial Rounded MT', Calibri, source-sans-pro, sans-serif",
        "soft, playful sans",
    ),
    "industrial": (
        "Bahnschrift, 'DIN Alternate', 'Franklin Gothic Medium', 'Nimbus Sans Narrow', "
        "sans-serif-condensed, sans-serif",
        "condensed, technical sans (headings only)",
    ),
    "slab-serif": (
        "Rockwell, 'Rockwell Nova', 'Roboto Slab', 'DejaVu Serif', 'Sitka Small', serif",
        "solid, outdoorsy slab serif",
    ),
}
FontStack = Literal[
    "transitional", "old-style", "didone", "humanist", "geometric", "neo-grotesque", "rounded",
    "industrial", "slab-serif",
]  # fmt: skip
assert set(get_args(FontStack)) == set(FONT_STACKS)
HEADING_ONLY_FONTS = frozenset({"didone", "industrial"})
FALLBACK_BODY_FONT = "humanist"
RADIUS_MAX_PX = {"radius_small": 24.0, "radius_large": 32.0}


@dataclass(frozen=True)
class ContrastRule:
    """A foreground role drawn on a background role, and the ratio WCAG 2.1 AA asks of it."""

    fg: str
    bg: str
    minimum: float
    why: str


# Ordered so a role is settled as a background before it is used as one (primary, then on_primary).
CONTRAST_RULES: tuple[ContrastRule, ...] = (
    ContrastRule("text", "background", 4.5, "body text"),
    ContrastRule("text", "surface", 4.5, "body text on cards and bands"),
    ContrastRule("muted_text", "background", 4.5, "secondary text"),
    ContrastRule("muted_text", "surface", 4.5, "secondary text on cards"),
    ContrastRule("primary", "background", 4.5, "links and button fills next to body text"),
    ContrastRule("on_primary", "primary", 4.5, "button labels"),
    ContrastRule("accent", "background", 3.0, "large text: headings and eyebrows"),
    ContrastRule("accent", "surface", 3.0, "large text on bands"),
    ContrastRule("border", "background", 3.0, "form field boundaries (WCAG 1.4.11)"),
)  # The footer inverts text and background: the same pair as the first rule.
