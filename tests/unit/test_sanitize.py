"""Model and merchant text is made safe before it is published."""

from __future__ import annotations

import html
import random
import re
import string

import nh3
import pytest

from domain import sanitize
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


# --- the fast paths give what the plain code gave -------------------------------------------

_OLD_DANGEROUS = re.compile(
    r"(?i)(javascript\s*:|vbscript\s*:|data\s*:\s*text/html|data\s*:|\bon[a-z]+\s*=|expression\s*\(|@import|"
    r"<\s*/?\s*script|<\s*/?\s*style|<\s*iframe|url\s*\()"
)


def _old_defanged(text: str) -> str:
    if not any(t in text for t in (":", "=", "(", "@", "<")):
        return text
    return _OLD_DANGEROUS.sub(sanitize._defang, text)


def _old_plain_text(text: str, max_len: int | None = None) -> str:
    """`plain_text` before its fast path (kept to compare against)."""
    if "<" in text or "&" in text or "\x00" in text:
        decoded = html.unescape(nh3.clean(text, tags=set(), attributes={}, strip_comments=True))
    else:
        decoded = text
    if "<" in decoded:
        decoded = html.unescape(nh3.clean(decoded, tags=set(), attributes={}))
        decoded = decoded.replace("<", "\u2039").replace(">", "\u203a")
    folded = " ".join(decoded.split())
    safe = _old_defanged(folded)
    if max_len is not None and len(safe) > max_len:
        safe = safe[: max_len - 1].rstrip() + "\u2026"
    return safe


_WHITESPACE = [chr(c) for c in range(0x110000) if chr(c).isspace()]
# What case-folds onto the letters of the tokens (and what nearly does), markup, entities, triggers.
_ODD = ["\u0130", "\u0131", "\u017f", "\u212a", "\u00df", "\u00e9", "\u4e2d", "\U0001f600", "\x00", "\u2039"]
_PIECES = [
    "javascript", "JavaScript", "vbscript", "data", "DATA", "text/html", "on", "ON", "onerror", "oNload",
    "expression", "import", "url", "URL", "script", "style", "iframe", "\u017fcript", "java\u017fcript",
    "\u0131", "\u212aon=", "o\u212a=", "\u0130frame", "a1on1x=", "\u00e9onx=", "@\u0130mport", "<\u017ftyle",
    "<", ">", "/", "&", "&amp;", "&lt;", "&#60;", "&nbsp;", ":", "=", "(", "@", "_", "-", "'", '"',
    "a", "b", "e", "o", "n", "x", "mug", "Bob", "8 OZ", "2024-11-14T13:47:07-08:00", "?v=1731620823",
    "https://cdn.shopify.com/s/files/1/x.png", "<p>", "</p>", "<b>", "<!-- c -->",
]  # fmt: skip


def _random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 12)):
        roll = rng.random()
        if roll < 0.45:
            parts.append(rng.choice(_PIECES))
        elif roll < 0.6:
            parts.append(" ")
        elif roll < 0.75:
            parts.append(rng.choice(_WHITESPACE))
        elif roll < 0.85:
            parts.append(rng.choice(_ODD))
        else:
            parts.append("".join(rng.choice(string.printable) for _ in range(rng.randint(1, 6))))
    return "".join(parts)


def test_the_whitespace_plain_text_folds_is_the_whitespace_its_fast_path_refuses() -> None:
    assert all(re.fullmatch(r"\s", c) for c in _WHITESPACE)
    assert not [chr(c) for c in range(0x110000) if re.fullmatch(r"\s", chr(c)) and not chr(c).isspace()]


def test_plain_text_and_clean_html_give_what_they_gave_before_their_fast_paths() -> None:
    rng = random.Random(6122026)
    samples = [
        "",
        " ",
        "a",
        "a b",
        "a  b",
        " a",
        "a ",
        "a\u00a0b",
        "a\u2028b",
        "x" * 80,
        "Mug | 8 OZ · edition 4",
    ]
    samples += [_random_text(rng) for _ in range(20000)]
    for text in samples:
        for max_len in (None, 5, 70):
            assert plain_text(text, max_len) == _old_plain_text(text, max_len), (repr(text), max_len)
        cleaned = nh3.clean(
            text, tags=sanitize.ALLOWED_TAGS, attributes={}, url_schemes=set(), strip_comments=True
        )
        cleaned = cleaned.replace("&lt;", "\u2039").replace("&gt;", "\u203a")
        assert clean_html(text) == _old_defanged(cleaned), repr(text)
        assert is_safe(text) == (_OLD_DANGEROUS.search(text) is None), repr(text)


def test_plain_text_gives_clean_text_back_as_the_same_object() -> None:
    text = "Classic Legendary Camp Mug | 8 OZ · edition 40000"
    assert plain_text(text) is text
    assert plain_text(text, 20) == text[:19].rstrip() + "\u2026"
