"""WCAG 2.1 contrast: relative luminance, ratios, and the smallest change that reaches a ratio."""

from __future__ import annotations

import re

_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")
WHITE, BLACK = "#ffffff", "#000000"


def parse_hex(colour: str) -> tuple[int, int, int]:
    """'#1d4ed8' -> (29, 78, 216); ValueError for anything else."""
    match = _HEX.fullmatch(colour.strip())
    if match is None:
        raise ValueError(f"{colour!r} is not a #rrggbb colour")
    raw = match.group(1)
    return int(raw[0:2], 16), int(raw[2:4], 16), int(raw[4:6], 16)


def to_hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """Relative luminance as WCAG 2.1 defines it."""
    r, g, b = (_linear(c) for c in parse_hex(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ratio(fg: str, bg: str) -> float:
    """The contrast ratio of two colours, from 1 to 21."""
    a, b = luminance(fg), luminance(bg)
    hi, lo = max(a, b), min(a, b)
    return (hi + 0.05) / (lo + 0.05)


def adjust_to_ratio(fg: str, bg: str, minimum: float) -> str | None:
    """The colour nearest `fg` (mixed toward black or white) that reaches `minimum` on `bg`.

    Black or white always reaches 4.58:1 on some side of any background, so every AA
    minimum is reachable; None only if `minimum` asks for more than that side can give.
    """
    if ratio(fg, bg) >= minimum:
        return fg
    target = BLACK if ratio(BLACK, bg) >= ratio(WHITE, bg) else WHITE
    if ratio(target, bg) < minimum:
        return None
    start, end = parse_hex(fg), parse_hex(target)

    def mix(t: float) -> str:
        return to_hex(tuple(s + (e - s) * t for s, e in zip(start, end, strict=True)))  # type: ignore[arg-type]

    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if ratio(mix(mid), bg) >= minimum:
            hi = mid
        else:
            lo = mid
    # Rounding to whole channels can land just under the line: step on until it holds.
    t = hi
    while ratio(mix(t), bg) < minimum and t < 1:
        t = min(1.0, t + 0.005)
    return mix(t)
