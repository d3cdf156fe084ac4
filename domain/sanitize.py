"""Make model and merchant text safe to publish into a storefront."""

from __future__ import annotations

import html
import re
from typing import Any

import nh3

# What product descriptions may contain: structure and emphasis, nothing active.
ALLOWED_TAGS = {"p", "br", "ul", "ol", "li", "strong", "em", "b", "i", "h3", "h4", "blockquote"}
# Active tokens: script URLs, event handlers, CSS expressions and imports, script/style/iframe tags.
_TOKENS = (
    r"javascript\s*:",
    r"vbscript\s*:",
    r"data\s*:\s*text/html",
    r"data\s*:",
    r"\bon[a-z]+\s*=",
    r"expression\s*\(",
    r"@import",
    r"<\s*/?\s*script",
    r"<\s*/?\s*style",
    r"<\s*iframe",
    r"url\s*\(",
)
_DANGEROUS = re.compile("(?i)(" + "|".join(_TOKENS) + ")")
# Every token `_DANGEROUS` matches contains one of these: text without any cannot match, and
# most strings (names, SKUs, sentences) skip the regex scan.
_TRIGGERS = (":", "=", "(", "@", "<")
# `re` skips quickly to where a match can begin only when every branch starts with a plain
# character; `(?i)` and `\b` rule that out, so `_DANGEROUS` tries all eleven branches at every
# position (~1 ms for one product's strings). These two scans find a match wherever
# `_DANGEROUS` would, ~13x and ~3x faster, and text they pass is returned as it is:
# - ASCII text, lowercased: the tokens without the word boundary (they match more, never less);
# - other text: `_DANGEROUS`, tried only at the characters a token can begin with (under
#   `(?i)`, no other code point matches these: tests/unit/test_sanitize.py checks every one).
_FIRST = "jJvVdDoOeEuU@<"
_ASCII_SCAN = re.compile("|".join(t.replace(r"\b", "") for t in _TOKENS))
_SCAN = re.compile(f"(?=[{_FIRST}])(?i:" + "|".join(_TOKENS) + ")")


def _suspect(text: str) -> bool:
    """False when `_DANGEROUS` cannot match `text` (True may be a false alarm)."""
    if not any(t in text for t in _TRIGGERS):
        return False
    if text.isascii():
        return _ASCII_SCAN.search(text.lower()) is not None
    return _SCAN.search(text) is not None


def _defanged(text: str) -> str:
    if not _suspect(text):
        return text
    return _DANGEROUS.sub(_defang, text)


_BLOCK_END = re.compile(r"(?i)<\s*(br|/p|/li|/h\d|/div|/tr)\b[^>]*>")


def clean_html(markup: str) -> str:
    """Sanitize model HTML to the allowlist: no scripts, handlers, links, styles or URLs."""
    cleaned = nh3.clean(markup, tags=ALLOWED_TAGS, attributes={}, url_schemes=set(), strip_comments=True)
    # A "<" in text comes out as "&lt;", which a renderer that decodes entities twice turns back
    # into markup ("&lt;script&gt;"): text angle brackets become the look-alikes plain_text uses.
    cleaned = cleaned.replace("&lt;", "\u2039").replace("&gt;", "\u203a")
    # Text nodes may still spell dangerous tokens ("javascript:"); defang them too.
    return _defanged(cleaned)


def _defang(match: re.Match[str]) -> str:
    return (
        match.group(0)
        .replace(":", "\u2236")
        .replace("(", "\uff08")
        .replace("=", "\ufe66")
        .replace("@", "\uff20")
        .replace("<", "&lt;")
    )


def plain_text(text: str, max_len: int | None = None) -> str:
    """Tags stripped (script bodies dropped), entities decoded, whitespace folded, tokens defanged.

    The result is plain text: the storefront escapes it when it renders; the project's own
    renderers escape it too.
    """
    if "<" in text or "&" in text or "\x00" in text:
        decoded = html.unescape(nh3.clean(text, tags=set(), attributes={}, strip_comments=True))
    else:
        # Nothing for the HTML parser to change (beyond CR, which folding removes anyway):
        # skipping it saves ~10 us per string, ~100 strings per product.
        decoded = text
    # Decoding can revive "<script>" spelled as entities: strip again.
    if "<" in decoded:
        decoded = html.unescape(nh3.clean(decoded, tags=set(), attributes={}))
        decoded = decoded.replace("<", "\u2039").replace(">", "\u203a")
    folded = " ".join(decoded.split())  # str.split and `\s` know the same whitespace
    safe = _defanged(folded)
    if max_len is not None and len(safe) > max_len:
        safe = safe[: max_len - 1].rstrip() + "\u2026"
    return safe


def html_to_text(markup: str) -> str:
    """Merchant HTML to readable plain text for a prompt (scripts and styles dropped)."""
    spaced = _BLOCK_END.sub("\n", markup)
    text = html.unescape(nh3.clean(spaced, tags=set(), attributes={}, strip_comments=True))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def defang_tree(value: Any) -> Any:
    """Every string inside `value` with active tokens defanged (for documents that quote model text)."""
    if isinstance(value, str):
        return _defanged(value)
    if isinstance(value, dict):
        return {k: defang_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [defang_tree(v) for v in value]
    return value


def is_safe(text: str) -> bool:
    """True when nothing active survives in `text` (used by checks and tests)."""
    return not _suspect(text) or _DANGEROUS.search(text) is None
