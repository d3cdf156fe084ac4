"""Locales without servers: money in the store's currency, UI string tables, a rendered page in Spanish."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from domain.i18n import format_price, language, normalize, pick
from domain.themes.i18n import UI, default_cta, section_label, ui_strings
from domain.themes.safety import file_problems

NBSP = "\xa0"


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [
        ("699.00", "EUR", "de", f"699,00{NBSP}€"),
        ("699.00", "EUR", "es", f"699,00{NBSP}€"),
        ("699.00", "EUR", "en", "€699.00"),
        ("699", "USD", "en-US", "$699.00"),
        ("1699.5", "USD", "en", "$1,699.50"),
        ("1699.5", "EUR", "de-DE", f"1.699,50{NBSP}€"),
        ("30.00", "GBP", "en-GB", "£30.00"),
        ("520.00", "INR", "en-IN", "₹520.00"),
        ("1299.00", "EUR", "nl", f"€{NBSP}1.299,00"),
        ("12.5", "EUR", "pt_BR", f"€{NBSP}12,50"),
        ("5", "EUR", "zz-QQ", "€5.00"),  # a tag nobody knows: English rules
    ],
)
def test_prices_are_formatted_in_the_stores_currency_by_the_locales_rules(
    amount: str, currency: str, locale: str, shown: str
) -> None:
    assert format_price(amount, currency, locale) == shown


def test_prices_without_a_known_currency_or_number_stay_plain() -> None:
    assert format_price("12", None, "de") == "12,00"
    assert format_price("12", "", "en") == "12.00"
    assert format_price("12", "EURO", "en") == "12.00"
    assert format_price("call us", "EUR", "en") == "call us"
    assert format_price("NaN", "EUR", "en") == "NaN"


def test_locale_tags_fall_back_from_tag_to_language_to_english() -> None:
    table = {"en": "E", "pt": "P", "pt-br": "B"}
    assert pick(table, "pt-BR") == "B" and pick(table, "pt_PT") == "P" and pick(table, "ja") == "E"
    assert pick(table, None) == "E" and pick(table, "<script>") == "E"
    assert normalize("es_MX") == "es-mx" and language("es-MX") == "es" and normalize("") == "en"


def test_every_language_has_every_ui_string() -> None:
    keys = set(UI["en"])
    assert {"en", "es", "fr", "de", "it", "pt", "nl"} <= set(UI)
    for lang, table in UI.items():
        assert set(table) == keys, (lang, keys ^ set(table))
        assert all(text.strip() for text in table.values()), lang
    # Translated, not copied: the words people click differ from English in every other language
    for lang in set(UI) - {"en"}:
        assert UI[lang]["cart"] != UI["en"]["cart"] and UI[lang]["shipping"] != UI["en"]["shipping"], lang


def test_ui_strings_fill_in_the_store_name_and_defaults_follow_the_language() -> None:
    assert ui_strings("fr-CA", "Stanley")["about"] == "À propos de Stanley"
    assert ui_strings("ja", "Stanley")["about"] == "About Stanley"
    assert default_cta("newsletter", "it") == "Iscriviti" and default_cta("footer", "it") == ""
    assert section_label("testimonials", "nl") == "Wat klanten zeggen"


# --- a page rendered in the brief's language ---------------------------------------------------


def _doc(locale: str, currency: str) -> dict[str, Any]:
    palette = {
        "background": "#ffffff",
        "surface": "#f1f5f9",
        "text": "#0f172a",
        "muted_text": "#334155",
        "primary": "#1e3a8a",
        "on_primary": "#ffffff",
        "accent": "#1d4ed8",
        "border": "#64748b",
    }
    products = [
        {
            "id": "1",
            "title": "Taza Clásica",
            "product_type": "Tazas",
            "price": "30.00",
            "handle": "taza",
            "image": {"src": "https://cdn.shopify.com/s/files/1/0001/taza.png?v=1", "alt": "Taza azul"},
        },
        {
            "id": "2",
            "title": "Botella",
            "product_type": "",
            "price": "1299.5",
            "handle": "botella",
            "image": {"src": "https://images.example.com/botella.png", "alt": "Botella"},  # not Shopify
        },
    ]
    sections = [
        ("hero", {"heading": "Hecho para durar", "subheading": "El campo", "cta_label": "Comprar"}, ["1"]),
        ("product_grid", {"heading": "Todo", "subheading": "", "cta_label": ""}, ["1", "2"]),
        ("featured_collection", {"heading": "Vacío", "subheading": "", "cta_label": ""}, []),
        ("newsletter", {"heading": "Únete", "body": "", "cta_label": "Suscribirse"}, []),
        ("footer", {"heading": "Stanley", "body": "Desde 1913."}, []),
    ]
    return {
        "store": "stanley1913",
        "build_id": "b-0001",
        "name": "Stanley",
        "locale": locale,
        "currency": currency,
        "brand": {},
        "tokens": {
            "palette": palette,
            "typography": {
                "heading_font": "old-style",
                "body_font": "humanist",
                "base_size_px": 16,
                "scale_ratio": 1.25,
                "heading_weight": 600,
                "line_height": 1.6,
            },
            "shape": {
                "radius_small": "4px",
                "radius_large": "12px",
                "spacing_unit_px": 8,
                "border_width_px": 1,
            },
        },
        "model_css": {"heading_css": "", "button_css": ""},
        "products": products,
        "sections": [
            {
                "id": f"{n:02d}-{kind}",
                "type": kind,
                "intent": "x",
                "copy": {**copy, "items": []},
                "product_ids": ids,
                "sample_content": False,
                "fragment": f"sections/{n:02d}-{kind}.html",
            }
            for n, (kind, copy, ids) in enumerate(sections, start=1)
        ],
    }


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = ""
        self.csp = ""
        self.imgs: list[str] = []
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a.get("content") or ""
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        if tag == "script":
            self.scripts += 1

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


def test_a_spanish_brief_renders_a_spanish_page_with_shopify_images_and_euro_prices() -> None:
    from domain.themes.render import render_files

    # Given a build document in Spanish for a store that sells in euros
    files = {f.path: f.text() for f in render_files(_doc("es", "EUR"))}
    page = _Page()
    page.feed(files["preview.html"])
    text = " ".join(page.text)
    # Then the page says it is Spanish, and its fixed words are Spanish, not English
    assert page.lang == "es"
    for word in ("Carrito (0)", "Tienda", "Envíos y devoluciones", "Correo electrónico", "Sobre Stanley"):
        assert word in text, word
    for english in ("Cart (0)", "Shop all", "Shipping and returns", "Email address", "About Stanley"):
        assert english not in text, english
    assert "Todavía no hay productos que mostrar." in text  # the empty featured collection
    # And prices are in euros, Spanish style
    assert f"30,00{NBSP}€" in text and f"1.299,50{NBSP}€" in text
    assert not re.search(r"(?<![\d,])30\.00", text)
    # And only the Shopify CDN image is shown; the other product keeps its placeholder letter
    assert page.imgs and set(page.imgs) == {"https://cdn.shopify.com/s/files/1/0001/taza.png?v=1"}
    # And the policy lets images come from Shopify's CDN only; nothing can run
    assert "img-src https://cdn.shopify.com https://*.myshopify.com/cdn/shop/" in page.csp
    assert "default-src 'none'" in page.csp and "script-src" not in page.csp and page.scripts == 0
    assert all(file_problems(path, body) == [] for path, body in files.items())


def test_an_english_brief_for_a_pound_store_and_an_unknown_language() -> None:
    from domain.themes.render import render_files

    page = _Page()
    page.feed(next(f.text() for f in render_files(_doc("en-GB", "GBP")) if f.path == "preview.html"))
    assert page.lang == "en-gb" and "£30.00" in " ".join(page.text) and "Cart (0)" in page.text
    # A language with no table: English words, but the page still says what language its copy is in
    page = _Page()
    page.feed(next(f.text() for f in render_files(_doc("ja", "JPY")) if f.path == "preview.html"))
    assert page.lang == "ja" and "Cart (0)" in page.text and "￥30" in " ".join(page.text)


@pytest.mark.parametrize(("given", "kept"), [("es", "es"), ("ES", "es"), ("pt_BR", "pt-BR"), (None, None)])
def test_a_brief_takes_a_language_tag(given: str | None, kept: str | None) -> None:
    from agents.theme.inputs import parse_brief

    assert parse_brief({"description": "calm linen", "locale": given}).locale == kept


@pytest.mark.parametrize("bad", ["e", "español", "<script>", "en US"])
def test_a_brief_refuses_what_is_not_a_language_tag(bad: str) -> None:
    from adapters.errors import InvalidInput
    from agents.theme.inputs import parse_brief

    with pytest.raises(InvalidInput, match=r"locale: .*language tag"):
        parse_brief({"description": "calm linen", "locale": bad})
