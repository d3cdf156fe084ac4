"""Deterministic checks on what the agents made, with numbers, and the fix-ups used when rounds run out.

Each `*_problems` function returns sentences the agent that made the part can act on
("palette.on_primary #9d174d on palette.primary #1d4ed8: contrast 1.43:1, needs at least
4.5:1 (button labels)"). Each `fix_*` function returns the part made to pass, and notes
saying what was changed from what, for `theme.json`.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.themes.catalogue import (
    CONTRAST_RULES,
    COPY_FIELDS,
    FALLBACK_BODY_FONT,
    FIRST,
    HEADING_ONLY_FONTS,
    LAST,
    MAX_SECTIONS,
    MIN_SECTIONS,
    RADIUS_MAX_PX,
    SECTIONS,
    SectionSpec,
)
from domain.themes.contrast import adjust_to_ratio, ratio
from domain.themes.css import length_px, sanitize_declarations
from domain.themes.hue import fix_hues, hue_problems
from domain.themes.i18n import default_cta, section_label

MODEL_CSS_FIELDS = ("heading_css", "button_css")
# A storefront's home page shows products: at least one of these.
PRODUCT_SECTIONS = frozenset({"featured_collection", "product_grid"})
# Sections added, in this order, when a plan is too short.
_PADDING = ("featured_collection", "product_grid", "story", "newsletter")


class UnfixableContrast(ValueError):
    """A palette that no single adjustment of its text colours can bring to AA."""


@dataclass(frozen=True)
class ContrastResult:
    fg: str
    bg: str
    fg_hex: str
    bg_hex: str
    ratio: float
    minimum: float
    why: str

    @property
    def passes(self) -> bool:
        return self.ratio >= self.minimum

    def sentence(self) -> str:
        return (
            f"palette.{self.fg} {self.fg_hex} on palette.{self.bg} {self.bg_hex}: contrast "
            f"{self.ratio:.2f}:1, needs at least {self.minimum:g}:1 ({self.why})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "fg": self.fg,
            "bg": self.bg,
            "fg_hex": self.fg_hex,
            "bg_hex": self.bg_hex,
            "ratio": round(self.ratio, 2),
            "minimum": self.minimum,
            "passes": self.passes,
            "use": self.why,
        }


def contrast_report(palette: dict[str, str]) -> list[ContrastResult]:
    """Every contrast rule measured on `palette`."""
    return [
        ContrastResult(
            r.fg, r.bg, palette[r.fg], palette[r.bg], ratio(palette[r.fg], palette[r.bg]), r.minimum, r.why
        )
        for r in CONTRAST_RULES
    ]


# --- design ---------------------------------------------------------------------


def design_problems(tokens: dict[str, Any], palette_hint: str | None = None) -> list[str]:
    """Contrast pairs under WCAG 2.1 AA, hues away from the palette hint, bad CSS values, unusable fonts."""
    problems = [c.sentence() for c in contrast_report(tokens["palette"]) if not c.passes]
    problems.extend(hue_problems(tokens["palette"], palette_hint))
    for name, limit in RADIUS_MAX_PX.items():
        value = tokens["shape"][name]
        try:
            px = length_px(value)
        except ValueError as exc:
            problems.append(f"shape.{name}: {exc}")
            continue
        if not 0 <= px <= limit:
            problems.append(f"shape.{name} is {value} ({px:g}px); use 0 to {limit:g}px")
    body_font = tokens["typography"]["body_font"]
    if body_font in HEADING_ONLY_FONTS:
        problems.append(f"typography.body_font {body_font!r} is for headings only; pick a text face")
    for name in MODEL_CSS_FIELDS:
        _, dropped = sanitize_declarations(tokens.get(name, ""))
        for d in dropped:
            problems.append(f"{name}: {d.property}: {d.reason}")
    return problems


def fix_design(
    tokens: dict[str, Any], palette_hint: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Tokens made to pass: hues turned to the hint's, text colours moved toward black or white
    just enough (which keeps their hue), values clamped.

    Raises `UnfixableContrast` (with the numbers) when a colour must sit on two backgrounds
    no single colour can serve, e.g. a dark background and a light surface.
    """
    fixed = copy.deepcopy(tokens)
    fixed["palette"], notes = fix_hues(fixed["palette"], palette_hint)
    palette = fixed["palette"]
    for rule in CONTRAST_RULES:
        before = palette[rule.fg]
        measured = ratio(before, palette[rule.bg])
        if measured >= rule.minimum:
            continue
        after = adjust_to_ratio(before, palette[rule.bg], rule.minimum)
        if after is None:  # pragma: no cover - black or white always reaches AA
            raise UnfixableContrast(f"palette.{rule.fg} cannot reach {rule.minimum:g}:1")
        palette[rule.fg] = after
        notes.append(
            {
                "part": "design",
                "field": f"palette.{rule.fg}",
                "from": before,
                "to": after,
                "reason": f"{measured:.2f}:1 on palette.{rule.bg} {palette[rule.bg]}, "
                f"needs {rule.minimum:g}:1 ({rule.why}); now {ratio(after, palette[rule.bg]):.2f}:1",
            }
        )
    still = [c.sentence() for c in contrast_report(palette) if not c.passes]
    if still:
        raise UnfixableContrast("; ".join(still))
    for name, limit in RADIUS_MAX_PX.items():
        value = fixed["shape"][name]
        try:
            px = length_px(value)
        except ValueError:
            px = -1.0
        if not 0 <= px <= limit:
            clamped = f"{min(max(px, 0.0), limit):g}px" if px >= 0 else "4px"
            fixed["shape"][name] = clamped
            notes.append({"part": "design", "field": f"shape.{name}", "from": value, "to": clamped})
    if fixed["typography"]["body_font"] in HEADING_ONLY_FONTS:
        notes.append(
            {
                "part": "design",
                "field": "typography.body_font",
                "from": fixed["typography"]["body_font"],
                "to": FALLBACK_BODY_FONT,
            }
        )
        fixed["typography"]["body_font"] = FALLBACK_BODY_FONT
    return fixed, notes


def sanitized_model_css(tokens: dict[str, Any]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The designer's CSS fields kept to the allowlist, and what was dropped (property and reason)."""
    kept: dict[str, str] = {}
    dropped: list[dict[str, str]] = []
    for name in MODEL_CSS_FIELDS:
        text, gone = sanitize_declarations(tokens.get(name, ""))
        kept[name] = text
        dropped.extend({"field": name, **d.as_dict()} for d in gone)
    return kept, dropped


# --- layout ---------------------------------------------------------------------


def layout_problems(plan: dict[str, Any], product_ids: Sequence[str]) -> list[str]:
    """Order, duplicates, count and product ids of a layout plan."""
    types = [s["type"] for s in plan["sections"]]
    problems = []
    if not types or types[0] != FIRST:
        problems.append(
            f"the page must start with {FIRST!r} (it starts with {types[0] if types else None!r})"
        )
    if not types or types[-1] != LAST:
        problems.append(f"the page must end with {LAST!r} (it ends with {types[-1] if types else None!r})")
    for kind, count in Counter(types).items():
        if count > 1:
            problems.append(f"{kind!r} appears {count} times; use each section type at most once")
    if not PRODUCT_SECTIONS & set(types):
        problems.append(f"the page shows no products; include one of {sorted(PRODUCT_SECTIONS)}")
    distinct = len(set(types))
    if not MIN_SECTIONS <= distinct <= MAX_SECTIONS:
        problems.append(f"the page has {distinct} distinct sections; use {MIN_SECTIONS} to {MAX_SECTIONS}")
    known = set(product_ids)
    for section in plan["sections"]:
        unknown = [p for p in section.get("product_ids", []) if p not in known]
        if unknown:
            problems.append(
                f"{section['type']}.product_ids: {len(unknown)} id(s) are not products of this store"
            )
    return problems


def fix_layout(
    plan: dict[str, Any], product_ids: Sequence[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A plan that passes: duplicates dropped, hero first, footer last, padded or cut, ids filled."""
    before = [s["type"] for s in plan["sections"]]
    seen: dict[str, dict[str, Any]] = {}
    for section in plan["sections"]:
        seen.setdefault(section["type"], copy.deepcopy(section))
    middle = [s for t, s in seen.items() if t not in (FIRST, LAST)]
    if not PRODUCT_SECTIONS & set(seen):
        middle.insert(
            0, {"type": "product_grid", "intent": SECTIONS["product_grid"].purpose, "product_ids": []}
        )
    for kind in _PADDING:
        if len(middle) + 2 >= MIN_SECTIONS:
            break
        if kind not in seen:
            middle.append({"type": kind, "intent": SECTIONS[kind].purpose, "product_ids": []})
    # Cut from the end, but never the last section that shows products.
    while len(middle) > MAX_SECTIONS - 2:
        keep = [s for s in middle if s["type"] in PRODUCT_SECTIONS][:1]
        droppable = [s for s in middle if s not in keep]
        middle.remove(droppable[-1])
    first = seen.get(FIRST) or {"type": FIRST, "intent": SECTIONS[FIRST].purpose, "product_ids": []}
    last = seen.get(LAST) or {"type": LAST, "intent": SECTIONS[LAST].purpose, "product_ids": []}
    sections = [first, *middle, last]
    known = list(product_ids)
    shown: set[str] = set()
    for section in sections:
        picked = fill_products(SECTIONS[section["type"]], section.get("product_ids", []), known, shown)
        section["product_ids"] = picked
        shown.update(picked)
    fixed = {**plan, "sections": sections}
    after = [s["type"] for s in sections]
    notes = [] if after == before else [{"part": "layout", "field": "sections", "from": before, "to": after}]
    return fixed, notes


def fill_products(
    spec: SectionSpec, chosen: Sequence[str], known: Sequence[str], shown: set[str] | None = None
) -> list[str]:
    """The section's product ids: the model's valid picks, then the store's order (unshown first)."""
    valid = set(known)
    out = list(dict.fromkeys(p for p in chosen if p in valid))
    shown = shown or set()
    for pid in [p for p in known if p not in shown] + [p for p in known if p in shown]:
        if len(out) >= spec.products:
            break
        if pid not in out:
            out.append(pid)
    return out[: spec.products]


# --- copy -----------------------------------------------------------------------


def copy_problems(spec: SectionSpec, words: dict[str, Any]) -> list[str]:
    """Copy over the section's limits, required fields left empty, too few or too many items."""
    problems = []
    for name in COPY_FIELDS:
        value = words.get(name) or ""
        limit = spec.limit(name)
        if name in spec.required and not value.strip():
            problems.append(f"{name} is required for {spec.type}")
        elif limit and len(value) > limit:
            problems.append(f"{name} is {len(value)} characters; {spec.type} allows at most {limit}")
    low, high = spec.items
    items = words.get("items") or []
    if high and not low <= len(items) <= high:
        problems.append(f"items: {len(items)} given; {spec.type} needs {low} to {high}")
    for n, item in enumerate(items[: high or 0], start=1):
        for name, limit in spec.item_limits.items():
            value = item.get(name) or ""
            if len(value) > limit:
                problems.append(f"items[{n}].{name} is {len(value)} characters; at most {limit}")
            elif name == "text" and not value.strip():
                problems.append(f"items[{n}].text is empty")
    return problems


def fix_copy(
    spec: SectionSpec, words: dict[str, Any], locale: str | None = None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Copy that fits: trimmed at a word boundary, defaults (in the brief's language) for required
    fields; None drops the section."""
    notes: list[dict[str, Any]] = []
    fixed: dict[str, Any] = {}
    for name in COPY_FIELDS:
        value = (words.get(name) or "").strip()
        limit = spec.limit(name)
        if not limit:
            continue
        if len(value) > limit:
            trimmed = trim(value, limit, ellipsis=name in ("body", "subheading"))
            notes.append(
                {"part": f"copy:{spec.type}", "field": name, "from_length": len(value), "to": trimmed}
            )
            value = trimmed
        if not value and name in spec.required:
            cta = default_cta(spec.type, locale) if spec.default_cta else ""
            value = cta if name == "cta_label" and cta else section_label(spec.type, locale)
            notes.append({"part": f"copy:{spec.type}", "field": name, "from_length": 0, "to": value})
        fixed[name] = value
    items = []
    for item in (words.get("items") or [])[: spec.items[1]]:
        title = trim((item.get("title") or "").strip(), spec.item_limits.get("title", 40), ellipsis=False)
        text = trim((item.get("text") or "").strip(), spec.item_limits.get("text", 220), ellipsis=True)
        if text:
            items.append({"title": title, "text": text})
    fixed["items"] = items
    if len(items) < spec.items[0]:
        notes.append({"part": f"copy:{spec.type}", "field": "items", "dropped_section": True})
        return None, notes
    return fixed, notes


def trim(text: str, limit: int, *, ellipsis: bool) -> str:
    """`text` cut at a word boundary to at most `limit` characters."""
    if len(text) <= limit:
        return text
    room = limit - 1 if ellipsis else limit
    cut = text[: room + 1]
    space = cut.rfind(" ")
    cut = (cut[:space] if space > 0 else text[:room]).rstrip(" ,;:-")
    return cut + "\u2026" if ellipsis else cut
