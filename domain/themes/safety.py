"""The last gate before publishing: nothing active in any file of a build, whatever came before.

Escaping and allowlists upstream should make every finding here impossible; a finding
means a bug, so the build fails rather than publish it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from domain.themes.css import stylesheet_problems
from domain.themes.images import shopify_image

_FORBIDDEN_TAGS = {
    "script",
    "iframe",
    "object",
    "embed",
    "frame",
    "frameset",
    "applet",
    "base",
    "link",
    "svg",
}
_URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "poster", "srcset", "data"}
_SAFE_URL = re.compile(r"^(#[A-Za-z0-9_-]*|https://[^\s\"'<>`]+)$")
_EVERYWHERE = re.compile(r"(?i)(javascript\s*:|vbscript\s*:|expression\s*\(|@import|<\s*script)")


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_style = False
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}> is not allowed")
        if tag == "meta" and any(k == "http-equiv" and (v or "").lower() == "refresh" for k, v in attrs):
            self.problems.append("<meta http-equiv=refresh> is not allowed")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler attribute {name!r} on <{tag}>")
            elif name == "style":
                self.problems.append(f"inline style attribute on <{tag}>")
            elif name in _URL_ATTRS and not _SAFE_URL.fullmatch((value or "").strip()):
                self.problems.append(f"{name} on <{tag}> is not a fragment or https URL")
            elif tag == "img" and name == "src" and not shopify_image(value):
                self.problems.append(f"src on <img> is not an image on Shopify's CDN: {(value or '')[:80]!r}")
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def html_problems(markup: str) -> list[str]:
    """Scripts, frames, handlers, inline styles, unsafe URLs, images off Shopify's CDN, unsafe CSS."""
    scanner = _Scanner()
    scanner.feed(markup)
    scanner.close()
    problems = scanner.problems
    for css in scanner.styles:
        problems.extend(stylesheet_problems(css))
    return problems


def file_problems(path: str, text: str) -> list[str]:
    """Why the file at `path` must not be published (empty when it is safe)."""
    problems = [f"contains {m.group(0)!r}" for m in _EVERYWHERE.finditer(text)]
    if path.endswith(".css"):
        problems.extend(stylesheet_problems(text))
    elif path.endswith(".html"):
        problems.extend(html_problems(text))
    return [f"{path}: {p}" for p in problems]
