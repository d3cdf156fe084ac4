"""Model and merchant text is made safe before it is published."""

from __future__ import annotations

import html

import pytest

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
