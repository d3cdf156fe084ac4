"""The project's own templates turn a theme document into files: tokens, styles, sections, preview.

Models never write markup or CSS that reaches a file as text: words are escaped by
Jinja2's autoescape, tokens are validated values, model CSS arrives already parsed and
allowlisted (`css.sanitize_declarations`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from domain.i18n import format_price, normalize
from domain.themes.catalogue import FONT_STACKS, SECTIONS
from domain.themes.i18n import ui_strings
from domain.themes.images import PREVIEW_CSP, shopify_image

TEMPLATES = Path(__file__).parent / "templates"
_SAFE_CSS_VALUE = re.compile(r"^[#A-Za-z0-9 .,'\-]+$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
NAV_SECTIONS = ("featured_collection", "product_grid", "story", "newsletter")
_CSS_STRING_SAFE = re.compile(r"[^\\\"'<>\x00-\x1f\x7f]")
_ARTICLES = {"the", "a", "an", "le", "la", "les", "el", "der", "die", "das"}
_GENERIC_TYPES = {"", "normal", "default", "all", "product", "products"}
SPACE_STEPS = (1, 2, 3, 4, 6, 8, 12, 16)
MIN_TEXT_PX = 13.0
FONT_STEPS = {"sm": -1, "base": 0, "lg": 1, "xl": 2, "2xl": 3, "3xl": 4, "4xl": 5, "5xl": 6}


@dataclass(frozen=True)
class RenderedFile:
    """One file of a build: its path under the build prefix, bytes and content type."""

    path: str
    body: bytes
    content_type: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    def text(self) -> str:
        return self.body.decode("utf-8")


def _css_value(value: Any) -> str:
    """A token value for a stylesheet; anything but plain value characters is a bug, so refuse it."""
    text = str(value)
    if not _SAFE_CSS_VALUE.fullmatch(text):
        raise ValueError(f"refusing to write {text!r} into a stylesheet")
    return text


def _css_string(value: Any) -> str:
    """Text for a CSS string in double quotes: quotes, backslashes, '<', '>' and controls escaped."""
    return "".join(ch if _CSS_STRING_SAFE.fullmatch(ch) else f"\\{ord(ch):x} " for ch in str(value))


@functools.cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["css_value"] = _css_value
    env.filters["css_string"] = _css_string
    return env


def css_variables(tokens: dict[str, Any]) -> dict[str, str]:
    """Design tokens as CSS custom properties (`--ws-*`), every value computed or validated here."""
    palette, typo, shape = tokens["palette"], tokens["typography"], tokens["shape"]
    out = {f"--ws-color-{role.replace('_', '-')}": colour for role, colour in palette.items()}
    out["--ws-font-heading"] = FONT_STACKS[typo["heading_font"]][0]
    out["--ws-font-body"] = FONT_STACKS[typo["body_font"]][0]
    base, ratio = float(typo["base_size_px"]), float(typo["scale_ratio"])
    for name, step in FONT_STEPS.items():
        # Small text never under 13px, whatever the ratio: it carries prices and labels.
        out[f"--ws-font-size-{name}"] = f"{max(base * ratio**step, MIN_TEXT_PX):.2f}px"
    out["--ws-heading-weight"] = str(int(typo["heading_weight"]))
    out["--ws-line-height"] = f"{float(typo['line_height']):.2f}"
    unit = int(shape["spacing_unit_px"])
    for n in SPACE_STEPS:
        out[f"--ws-space-{n}"] = f"{unit * n}px"
    out["--ws-radius-small"] = shape["radius_small"]
    out["--ws-radius-large"] = shape["radius_large"]
    out["--ws-border-width"] = f"{int(shape['border_width_px'])}px"
    return out


def _kicker(product: dict[str, Any]) -> str:
    kind = product.get("product_type") or ""
    return "" if kind.strip().lower() in _GENERIC_TYPES else kind


def _mark(title: str) -> str:
    """The letter a product's placeholder shows: its first word that isn't an article."""
    words = [w for w in title.split() if w[:1].isalnum()]
    meaningful = [w for w in words if w.lower() not in _ARTICLES] or words or ["?"]
    return meaningful[0][:1].upper()


def paragraphs(body: str, target: int = 280) -> list[str]:
    """Long plain text split at sentence ends into paragraphs of about `target` characters."""
    sentences = _SENTENCE.split(body.strip())
    out: list[str] = []
    for sentence in (s for s in sentences if s):
        if out and len(out[-1]) < target:
            out[-1] = f"{out[-1]} {sentence}"
        else:
            out.append(sentence)
    return out


def _card(product: dict[str, Any], currency: str, locale: str) -> dict[str, Any]:
    """A product as the templates show it: Shopify CDN image (or a letter), price in the store's money."""
    image = product.get("image") or {}
    src = shopify_image(image.get("src"))
    return {
        **product,
        "kicker": _kicker(product),
        "mark": _mark(product["title"]),
        "img": {"src": src, "alt": image.get("alt") or product["title"]} if src else None,
        "price_text": format_price(product["price"], currency, locale) if product.get("price") else "",
    }


def _section_context(
    section: dict[str, Any], products: dict[str, dict[str, Any]], currency: str, locale: str
) -> dict[str, Any]:
    spec = SECTIONS[section["type"]]
    shown = [_card(products[pid], currency, locale) for pid in section["product_ids"] if pid in products]
    copy = {**section["copy"], "paragraphs": paragraphs(section["copy"].get("body", ""))}
    return {**section, "copy": copy, "spec": spec, "products": shown}


def doc_locale(doc: dict[str, Any]) -> str:
    """The build's language tag: the document's, else its brief's, else English."""
    return normalize(doc.get("locale") or (doc.get("brief") or {}).get("locale"))


def render_section(
    section: dict[str, Any],
    products: dict[str, dict[str, Any]],
    name: str,
    *,
    locale: str = "en",
    currency: str = "",
) -> str:
    """One section's HTML fragment, its fixed words in `locale`, prices in `currency`."""
    template = _env().get_template(f"sections/{section['type']}.html.j2")
    return template.render(
        section=_section_context(section, products, currency, locale),
        store_name=name,
        t=ui_strings(locale, name),
    )


def render_files(doc: dict[str, Any]) -> list[RenderedFile]:
    """Every file of a build except `theme.json` (which lists these files' hashes)."""
    env = _env()
    css_vars = css_variables(doc["tokens"])
    tokens_css = env.get_template("tokens.css.j2").render(css_vars=css_vars, store=doc["store"])
    theme_css = env.get_template("theme.css.j2").render(model_css=doc["model_css"])
    products = {p["id"]: p for p in doc["products"]}
    locale, currency = doc_locale(doc), doc.get("currency") or ""
    t = ui_strings(locale, doc["name"])
    files = [
        RenderedFile("tokens.css", tokens_css.encode(), "text/css; charset=utf-8"),
        RenderedFile("theme.css", theme_css.encode(), "text/css; charset=utf-8"),
    ]
    main: list[Markup] = []
    footer: list[Markup] = []
    for section in doc["sections"]:
        html = render_section(section, products, doc["name"], locale=locale, currency=currency)
        # Rendered just now with autoescape on: trusted markup from here on.
        (footer if section["type"] == "footer" else main).append(Markup(html))
        files.append(RenderedFile(section["fragment"], html.encode(), "text/html; charset=utf-8"))
    shown = [s["type"] for s in doc["sections"]]
    nav = [{"type": kind, "label": t[f"nav_{kind}"]} for kind in shown if kind in NAV_SECTIONS]
    preview = env.get_template("preview.html.j2").render(
        lang=locale,
        t=t,
        csp=PREVIEW_CSP,
        name=doc["name"],
        store=doc["store"],
        build_id=doc["build_id"],
        brand=doc["brand"],
        tokens_css=Markup(tokens_css),
        theme_css=Markup(theme_css),
        main=main,
        footer=footer,
        nav=nav,
    )
    files.append(RenderedFile("preview.html", preview.encode(), "text/html; charset=utf-8"))
    return files


def render_theme_json(doc: dict[str, Any], files: list[RenderedFile]) -> RenderedFile:
    """`theme.json`: the document plus every file's path, size, type and hash."""
    listed = {
        f.path: {"bytes": len(f.body), "sha256": f.sha256, "content_type": f.content_type} for f in files
    }
    text = json.dumps({**doc, "files": listed}, ensure_ascii=False, indent=1, sort_keys=False)
    # Safe to inline into HTML by a storefront: no '<', '>' or '&' as themselves.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return RenderedFile("theme.json", text.encode(), "application/json")
