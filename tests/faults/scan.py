"""An independent scanner for published files: anything a browser could run is a finding.

Deliberately stricter than the project's own checks (it looks at the raw bytes, at every JSON
string, and at both again with HTML entities decoded), and written apart from them, so a
hole in the sanitizer is not mirrored here.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "corpus"
ACTIVE = {
    "script": re.compile(r"(?i)<\s*/?\s*script"),
    "event handler": re.compile(r"(?i)\bon[a-z]{3,}\s*="),
    "javascript: URL": re.compile(r"(?i)j\s*a\s*v\s*a\s*s\s*c\s*r\s*i\s*p\s*t\s*:"),
    "vbscript: URL": re.compile(r"(?i)vbscript\s*:"),
    "data: URL": re.compile(r"(?i)\bdata\s*:"),
    "CSS expression()": re.compile(r"(?i)expression\s*\("),
    "CSS @import": re.compile(r"(?i)@\s*import"),
}


def corpus(name: str) -> list[str]:
    """Payloads of `corpus/{name}.txt`, one per line."""
    lines = (CORPUS / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("# ")]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def findings(key: str, body: bytes) -> list[str]:
    """What in this file could run in a storefront (empty when nothing)."""
    text = body.decode("utf-8", "replace")
    texts = [text]
    if key.endswith(".json"):
        with contextlib.suppress(ValueError):
            texts.extend(_strings(json.loads(text)))
    texts += [html.unescape(t) for t in texts]
    found = []
    for name, pattern in ACTIVE.items():
        for t in texts:
            match = pattern.search(t)
            if match:
                found.append(f"{key}: {name} ({t[max(0, match.start() - 30) : match.end() + 30]!r})")
                break
    return found
