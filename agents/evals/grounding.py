"""Is an output grounded in its input? Every number and material it names must appear there."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Materials a copywriter is tempted to invent. Longer names first, so "stainless steel"
# is reported as itself rather than as "steel".
MATERIALS = tuple(
    sorted(
        {
            "stainless steel",
            "steel",
            "aluminium",
            "aluminum",
            "titanium",
            "copper",
            "brass",
            "bronze",
            "iron",
            "cast iron",
            "gold",
            "silver",
            "sterling silver",
            "platinum",
            "plastic",
            "bpa-free",
            "tritan",
            "polycarbonate",
            "polypropylene",
            "acrylic",
            "abs",
            "pvc",
            "vinyl",
            "silicone",
            "rubber",
            "latex",
            "neoprene",
            "foam",
            "memory foam",
            "glass",
            "tempered glass",
            "ceramic",
            "porcelain",
            "stoneware",
            "carbon fiber",
            "carbon fibre",
            "wood",
            "bamboo",
            "oak",
            "walnut",
            "teak",
            "cotton",
            "organic cotton",
            "muslin",
            "linen",
            "wool",
            "merino",
            "cashmere",
            "silk",
            "satin",
            "velvet",
            "denim",
            "canvas",
            "fleece",
            "polyester",
            "nylon",
            "spandex",
            "elastane",
            "lycra",
            "rayon",
            "viscose",
            "modal",
            "leather",
            "vegan leather",
            "faux leather",
            "suede",
            "marble",
            "granite",
        },
        key=lambda m: (-len(m), m),
    )
)

_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+$")


def normalize_number(raw: str) -> str:
    """'1,000' -> '1000', '2,5' -> '2.5', '20.0' -> '20', '0.50' -> '0.5'."""
    text = raw.replace(",", "") if _THOUSANDS.match(raw) else raw.replace(",", ".")
    head, _, tail = text.partition(".")
    head = head.lstrip("0") or "0"
    tail = tail.replace(".", "").rstrip("0")
    return f"{head}.{tail}" if tail else head


def numbers_in(text: str) -> set[str]:
    return {normalize_number(m) for m in _NUMBER.findall(text)}


def _material_re(name: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + re.escape(name) + r"s?(?![\w-])", re.IGNORECASE)


_MATERIAL_RES = {name: _material_re(name) for name in MATERIALS}


def materials_in(text: str, extra: Iterable[str] = ()) -> set[str]:
    """Material names found in `text` (a longer name hides the shorter one it contains)."""
    found: set[str] = set()
    names = sorted({*MATERIALS, *(m.lower() for m in extra)}, key=lambda m: (-len(m), m))
    for name in names:
        pattern = _MATERIAL_RES.get(name) or _material_re(name)
        if pattern.search(text) and not any(name in longer for longer in found):
            found.add(name)
    return found


def ungrounded(output_text: str, input_text: str, *, extra_materials: Iterable[str] = ()) -> list[str]:
    """What the output names that the input doesn't: numbers, then materials."""
    extra = list(extra_materials)
    problems = [f"number {n}" for n in sorted(numbers_in(output_text) - numbers_in(input_text))]
    mentioned = materials_in(output_text, extra)
    for name in sorted(mentioned):
        pattern = _MATERIAL_RES.get(name) or _material_re(name)
        if not pattern.search(input_text):
            problems.append(f"material {name!r}")
    return problems
