"""Model and merchant text is made safe before it is published."""

from __future__ import annotations

import html
import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.sanitize import clean_html, is_safe, plain_text

VECTORS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "<svg/onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>@import url(evil.css)</style>",
    '<p style="width: expression(alert(1))">x</p>',
    "<iframe src=data:text/html,<script>alert(1)</script>>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<SCRIPT SRC=//xss.rocks/.j></SCRIPT>",
    '<BODY ONLOAD=alert("XSS")>',
]


@pytest.mark.parametrize("vector", VECTORS)
def test_clean_html_removes_active_content(vector: str) -> None:
    out = clean_html(f"<p>Good</p>{vector}")
    assert is_safe(out), out
    assert "<p>Good</p>" in out


@pytest.mark.parametrize("vector", VECTORS)
def test_plain_text_is_inert(vector: str) -> None:
    out = plain_text(f"Title {vector}")
    assert "<" not in out
    assert is_safe(out), out


def test_plain_text_keeps_ordinary_text_and_limits_length() -> None:
    assert plain_text("Bob's  mug &amp; lid") == "Bob's mug & lid"
    assert len(plain_text("x" * 200, 70)) == 70


@pytest.mark.parametrize(
    "vector", ["&lt;script&gt;alert(1)&lt;/script&gt;", "a &lt;img src=x onerror=alert(1)&gt;"]
)
def test_clean_html_stays_inert_when_a_renderer_decodes_entities_again(vector: str) -> None:
    out = clean_html(f"<p>{vector}</p>")
    assert is_safe(html.unescape(out)), out
    assert out.startswith("<p>") and "\u2039" in out


def test_a_drafts_source_product_is_inert_but_keeps_its_shape() -> None:
    from domain.drafts import inert_product

    product = {
        "id": 7,
        "title": "Mug <script>x</script>",
        "body_html": "<p>Warm</p><script>y</script>",
        "images": [{"id": 1, "alt": "<b onmouseover=alert(1)>a</b>"}],
        "tags": ["javascript:go"],
    }
    out = inert_product(product)
    assert out["id"] == 7 and out["body_html"] == "<p>Warm</p>" and out["title"].startswith("Mug")
    assert all(is_safe(html.unescape(s)) for s in (out["title"], out["images"][0]["alt"], out["tags"][0]))


def test_the_fast_scans_know_every_character_a_token_can_begin_with() -> None:
    # Under (?i) `re` matches a letter to each code point with the same simple case: the fast
    # scan for non-ASCII text must try every one of them.
    from domain.sanitize import _FIRST

    first = re.compile("(?i)[jvdoeu@<]")
    starts = {chr(c) for c in range(sys.maxunicode + 1) if first.fullmatch(chr(c))}
    assert starts == set(_FIRST)


LONG_S, DOTLESS_I = "\u017f", "\u0131"
# Pieces that sit on the edges of the tokens: case, Unicode letters `(?i)` folds onto ASCII
# ones (long s, dotless i, capital I with dot, Kelvin sign), word boundaries, spacing.
_PIECES = [
    "java",
    "script",
    "JavaScript",
    "vbs",
    "cript",
    "data",
    "DATA",
    "text/html",
    "on",
    "ON",
    "click",
    "x",
    "_",
    "1",
    "expression",
    "url",
    "URL",
    "@",
    "import",
    "<",
    "/",
    "style",
    "iframe",
    LONG_S,
    DOTLESS_I,
    "\u0130",
    "\u212a",
    "\u00e9",
    "\u2019",
    " ",
    "\t",
    "\n",
    ":",
    "=",
    "(",
    ")",
    "&lt;",
    "\u00a0",
]


@given(st.lists(st.sampled_from(_PIECES), max_size=14))
@settings(max_examples=1000, deadline=None)
def test_the_fast_scans_defang_exactly_what_the_full_pattern_does(pieces: list[str]) -> None:
    from domain.sanitize import _DANGEROUS, _defang, _defanged

    text = "".join(pieces)
    assert _defanged(text) == _DANGEROUS.sub(_defang, text)
    assert is_safe(text) == (_DANGEROUS.search(text) is None)


@pytest.mark.parametrize(
    "text",
    [
        f"java{LONG_S}cript:x",
        "JAVASCR\u0130PT:x",
        f"vbscr{DOTLESS_I}pt:x",
        "xonclick=1",
        "a onclick = 1",
        "\u00e9 onload=1",
        f"<{LONG_S}tyle>",
        "URL (",
    ],
)
def test_folded_letters_and_boundaries_are_judged_as_the_full_pattern_judges_them(text: str) -> None:
    from domain.sanitize import _DANGEROUS, _defang, _defanged

    assert _defanged(text) == _DANGEROUS.sub(_defang, text)


@pytest.mark.parametrize(
    "text",
    [
        "2025-02-21T09:39:27-08:00",  # timestamps, URLs and prices carry triggers, nothing active
        "https://cdn.shopify.com/s/files/1/0375/files/Web_Product.jpg?v=1733955550",
        "<p>Double-wall <strong>vacuum</strong> insulation keeps drinks cold for 24 hours.</p>",
        "Caf\u00e9 cr\u00e8me: 2 for $5 (limited)",
        "size = 40 oz, colour = \u201cslate\u201d",
    ],
)
def test_the_fast_scans_pass_ordinary_text_without_the_full_pattern(text: str) -> None:
    # What the scans are for: catalog strings with ":", "=", "(" or "<" are cleared without
    # trying `_DANGEROUS` at every character. A scan that flagged everything would fail here.
    from domain.sanitize import _suspect

    assert not _suspect(text)
