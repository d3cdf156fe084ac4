"""Outputs of the theme-build agents: strategist, designer, layout planner, copywriter, critic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.themes.catalogue import FontStack, SectionType

Short = Annotated[str, Field(min_length=1, max_length=40)]
HexColour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", description="a hex colour, #rrggbb")]
CssLength = Annotated[
    str,
    Field(
        pattern=r"^(0|[0-9]{1,2}(\.[0-9]{1,2})?(px|rem))$",
        max_length=8,
        description="a CSS length such as 4px or 0.5rem",
    ),
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BrandStrategy(_Out):
    """Positioning, tone and keywords the other agents write and design to."""

    positioning: str = Field(min_length=1, max_length=300, description="one or two sentences")
    audience: str = Field(min_length=1, max_length=200)
    tone: list[Short] = Field(min_length=2, max_length=5, description="tone-of-voice words")
    keywords: list[Short] = Field(min_length=3, max_length=8)
    voice: str = Field(min_length=1, max_length=400, description="guidance for copywriters")
    visual_direction: str = Field(min_length=1, max_length=300, description="mood for the designer")


class Palette(_Out):
    """Colours by role; text roles are checked against the backgrounds they sit on."""

    background: HexColour = Field(description="page background")
    surface: HexColour = Field(description="cards and bands on the page")
    text: HexColour = Field(description="body text on background and surface")
    muted_text: HexColour = Field(description="secondary text on background and surface")
    primary: HexColour = Field(description="buttons and links")
    on_primary: HexColour = Field(description="label text on primary buttons")
    accent: HexColour = Field(description="large headings accents and eyebrows")
    border: HexColour = Field(description="hairlines and form field borders")


class Typography(_Out):
    heading_font: FontStack
    body_font: FontStack
    base_size_px: int = Field(ge=14, le=20)
    scale_ratio: float = Field(ge=1.1, le=1.6, description="type scale ratio between steps")
    heading_weight: int = Field(ge=300, le=900, multiple_of=100)
    line_height: float = Field(ge=1.2, le=1.9)


class Shape(_Out):
    radius_small: CssLength = Field(description="buttons and inputs")
    radius_large: CssLength = Field(description="cards and panels")
    spacing_unit_px: int = Field(ge=4, le=12)
    border_width_px: int = Field(ge=0, le=3)


class DesignTokens(_Out):
    """The theme's design tokens."""

    palette: Palette
    typography: Typography
    shape: Shape
    heading_css: str = Field(
        default="",
        max_length=300,
        description="optional extra CSS declarations for headings, e.g. 'letter-spacing: 0.02em'",
    )
    button_css: str = Field(
        default="",
        max_length=300,
        description="optional extra CSS declarations for buttons, e.g. 'text-transform: uppercase'",
    )
    rationale: str = Field(default="", max_length=400)


class PlannedSection(_Out):
    type: SectionType
    intent: str = Field(min_length=1, max_length=200, description="what this section should say or do")
    product_ids: list[str] = Field(
        default_factory=list, max_length=8, description="ids of store products to show, if any"
    )


class LayoutPlan(_Out):
    """The page: an ordered list of sections from the catalogue."""

    sections: list[PlannedSection] = Field(min_length=3, max_length=8)
    rationale: str = Field(default="", max_length=300)


class CopyItem(_Out):
    title: str = Field(default="", max_length=80, description="e.g. the reviewer's first name")
    text: str = Field(min_length=1, max_length=300)


class SectionCopy(_Out):
    """The words of one section; the section's own limits are given in the prompt."""

    heading: str = Field(min_length=1, max_length=90)
    subheading: str = Field(default="", max_length=200)
    body: str = Field(default="", max_length=700)
    cta_label: str = Field(default="", max_length=32)
    items: list[CopyItem] = Field(default_factory=list, max_length=4)


class Revision(_Out):
    part: Literal["design", "layout", "copy"]
    section: SectionType | None = Field(default=None, description="for copy: which section")
    problem: str = Field(min_length=1, max_length=300)


class Critique(_Out):
    """The critic's review of the whole theme."""

    approved: bool
    summary: str = Field(default="", max_length=400)
    revisions: list[Revision] = Field(default_factory=list, max_length=4)
