"""Strings that match simple regular expressions (JSON-schema `pattern`), plus a contrast-aware palette."""

from __future__ import annotations

import importlib
import random
import re
from typing import Any

# The stdlib's regex parser has no public face; this module is its one user, checked against
# CPython 3.11 (tests/unit/test_private_pins.py fails on another minor version).
PYTHON_CHECKED = (3, 11)
_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

# Backgrounds (light), text (dark) and accents (dark enough for white text, >= 4.5:1).
LIGHT = ("#ffffff", "#faf7f2", "#f5f5f4", "#f0f4f8", "#fdf6ec", "#f3f0ff", "#eef6f0", "#fff8f1")
DARK = ("#111827", "#1f2937", "#1c1917", "#0f172a", "#222222", "#2d2a32", "#1e293b", "#27272a")
ACCENT = ("#1d4ed8", "#b91c1c", "#047857", "#6d28d9", "#9d174d", "#0f766e", "#9a3412", "#4338ca")

_LIGHT_HINTS = ("background", "bg", "surface", "canvas", "paper", "base", "light")
_DARK_HINTS = ("text", "foreground", "fg", "ink", "body", "heading", "dark", "font")
_MAX_EXTRA_REPEAT = 3
_OTHER_CHARS = "aeinorstlbcdmx0123456789AEX-_ .,"


class _Unsupported(Exception):
    """The pattern uses a construct this generator does not handle."""


def palette_colour(name: str, rng: random.Random, hints: tuple[str, ...] = ()) -> str:
    """A hex colour chosen so text-ish names are dark, background-ish names light, others accents.

    With `hints` (colours the prompt's palette hint gives), accents are one of those, darkened
    (which keeps its hue) until white text on it reads at 4.5:1, as a designer honouring it would.
    """
    lowered = name.lower()
    if any(h in lowered for h in _LIGHT_HINTS):
        return rng.choice(LIGHT)
    if any(h in lowered for h in _DARK_HINTS):
        return rng.choice(DARK)
    if hints:
        return _dark_enough(rng.choice(hints))
    return rng.choice(ACCENT)


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _dark_enough(colour: str) -> str:
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    for step in range(21):
        scaled = "#" + "".join(f"{round(c * (1 - step / 20)):02x}" for c in rgb)
        if 1.05 / (_luminance(scaled) + 0.05) >= 4.5:
            return scaled
    return "#000000"


def _category_chars(category: Any) -> str:
    if category == _c.CATEGORY_DIGIT:
        return "0123456789"
    if category == _c.CATEGORY_WORD:
        return "abcdefghijklmnopqrstuvwxyz0123456789"
    if category == _c.CATEGORY_SPACE:
        return " "
    if category == _c.CATEGORY_NOT_DIGIT:
        return "abcdefghijklmnopqrstuvwxyz"
    if category == _c.CATEGORY_NOT_WORD:
        return "-. "
    if category == _c.CATEGORY_NOT_SPACE:
        return "abcdefghijklmnopqrstuvwxyz"
    raise _Unsupported(str(category))


def _class_chars(items: list[Any]) -> tuple[list[str], bool]:
    chars: list[str] = []
    negate = False
    for op, av in items:
        if op == _c.NEGATE:
            negate = True
        elif op == _c.LITERAL:
            chars.append(chr(av))
        elif op == _c.RANGE:
            lo, hi = av
            chars.extend(chr(x) for x in range(lo, min(hi, lo + 94) + 1))
        elif op == _c.CATEGORY:
            chars.extend(_category_chars(av))
        else:
            raise _Unsupported(str(op))
    return chars, negate


def _emit(parsed: Any, rng: random.Random, out: list[str]) -> None:
    for op, av in parsed:
        if op == _c.LITERAL:
            out.append(chr(av))
        elif op == _c.NOT_LITERAL:
            out.append(next(ch for ch in _OTHER_CHARS if ord(ch) != av))
        elif op == _c.ANY:
            out.append(rng.choice("abcdefghijklmnopqrstuvwxyz"))
        elif op == _c.IN:
            chars, negate = _class_chars(av)
            if negate:
                allowed = [ch for ch in _OTHER_CHARS if ch not in chars]
                if not allowed:
                    raise _Unsupported("negated class")
                out.append(rng.choice(allowed))
            else:
                out.append(rng.choice(chars))
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            low, high, sub = av
            top = low + _MAX_EXTRA_REPEAT if high == _c.MAXREPEAT else min(high, low + _MAX_EXTRA_REPEAT)
            for _ in range(rng.randint(low, max(low, top))):
                _emit(sub, rng, out)
        elif op == _c.SUBPATTERN:
            _emit(av[-1], rng, out)
        elif op == getattr(_c, "ATOMIC_GROUP", None):
            _emit(av, rng, out)
        elif op == _c.BRANCH:
            _emit(rng.choice(av[1]), rng, out)
        elif op == _c.AT:
            continue
        else:
            raise _Unsupported(str(op))


def matching_string(
    pattern: str, rng: random.Random, min_len: int = 0, max_len: int | None = None
) -> str | None:
    """A string that `re.search`-matches `pattern` within the length bounds, or None."""
    try:
        parsed = _parser.parse(pattern)
    except (re.error, RecursionError, ValueError):
        return None
    for _ in range(4):
        out: list[str] = []
        try:
            _emit(parsed, rng, out)
        except (_Unsupported, IndexError, StopIteration):
            return None
        candidate = "".join(out)
        if min_len <= len(candidate) and (max_len is None or len(candidate) <= max_len):
            try:
                if re.search(pattern, candidate):
                    return candidate
            except re.error:
                return None
    return None


def looks_like_hex_colour_pattern(pattern: str) -> bool:
    """True when `pattern` accepts hex colours such as #336699."""
    try:
        return bool(re.search(pattern, "#336699")) or bool(re.search(pattern, "#369"))
    except re.error:
        return False
