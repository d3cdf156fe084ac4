"""The colour wish: colours a palette hint names or gives, and how far a palette's hues stray from them.

A hint is free text ("navy and blue", "bosque verde y crema", "#0b3d91 with a warm accent").
Colour words (English, Spanish, French, German, Italian, Portuguese, Dutch) and `#rgb` /
`#rrggbb` codes are read from it. Only hued colours count for the check: a hint that names
only neutrals (white, black, grey, cream...) leaves the hues free.

The check (decision 0017, docs/decisions/): the palette's `primary` and `accent` must each
sit within `MAX_HUE_DISTANCE` degrees of some hue the hint names. Hue is HSL hue; a role colour with
almost no chroma (grey, near-black) has no hue and fails when the hint asks for hues.
"""

from __future__ import annotations

import colorsys
import re
from dataclasses import dataclass
from typing import Any

from domain.themes.contrast import parse_hex, to_hex

MAX_HUE_DISTANCE = 30.0
HUED_ROLES = ("primary", "accent")
# Below this chroma ((max - min) / 255) a colour reads as grey: its hue means nothing.
MIN_CHROMA = 0.12

# Hued colours. A word can be a modifier too ("forest green"): longest phrases are matched first.
_HUED: dict[str, str] = {
    # English
    "navy": "#000080", "navy blue": "#000080", "midnight blue": "#191970", "royal blue": "#4169e1",
    "blue": "#0000ff", "sky blue": "#87ceeb", "cobalt": "#0047ab", "indigo": "#4b0082",
    "teal": "#008080", "turquoise": "#40e0d0", "cyan": "#00ffff", "aqua": "#00ffff",
    "green": "#008000", "forest green": "#228b22", "olive": "#808000", "sage": "#9caf88",
    "emerald": "#50c878", "mint": "#98ff98", "lime": "#32cd32", "bottle green": "#006a4e",
    "red": "#ff0000", "crimson": "#dc143c", "burgundy": "#800020", "maroon": "#800000",
    "wine": "#722f37", "scarlet": "#ff2400", "coral": "#ff7f50", "salmon": "#fa8072",
    "terracotta": "#e2725b", "rust": "#b7410e", "orange": "#ffa500", "amber": "#ffbf00",
    "yellow": "#ffff00", "mustard": "#e1ad01", "gold": "#ffd700", "ochre": "#cc7722",
    "pink": "#ffc0cb", "hot pink": "#ff69b4", "magenta": "#ff00ff", "fuchsia": "#ff00ff",
    "blush": "#de5d83", "purple": "#800080", "violet": "#8f00ff", "lavender": "#b57edc",
    "lilac": "#c8a2c8", "plum": "#8e4585", "brown": "#8b4513", "chocolate": "#7b3f00",
    "copper": "#b87333", "bronze": "#cd7f32",
    # Spanish
    "azul marino": "#000080", "azul": "#0000ff", "verde": "#008000", "verde bosque": "#228b22",
    "rojo": "#ff0000", "naranja": "#ffa500", "amarillo": "#ffff00", "rosa": "#ffc0cb",
    "morado": "#800080", "violeta": "#8f00ff", "marrón": "#8b4513", "turquesa": "#40e0d0",
    "granate": "#800000", "dorado": "#ffd700", "celeste": "#87ceeb",
    # French
    "bleu marine": "#000080", "bleu": "#0000ff", "vert": "#008000", "vert forêt": "#228b22",
    "rouge": "#ff0000", "jaune": "#ffff00", "rose": "#ffc0cb", "bordeaux": "#800020",
    "marron": "#8b4513", "doré": "#ffd700",
    # German
    "marineblau": "#000080", "dunkelblau": "#00008b", "blau": "#0000ff", "grün": "#008000",
    "waldgrün": "#228b22", "rot": "#ff0000", "gelb": "#ffff00", "lila": "#c8a2c8",
    "braun": "#8b4513", "türkis": "#40e0d0", "golden": "#ffd700",
    # Italian
    "blu": "#0000ff", "blu navy": "#000080", "azzurro": "#007fff", "rosso": "#ff0000",
    "giallo": "#ffff00", "arancione": "#ffa500", "viola": "#8f00ff", "marrone": "#8b4513",
    # Portuguese
    "azul-marinho": "#000080", "vermelho": "#ff0000", "laranja": "#ffa500", "roxo": "#800080",
    "amarelo": "#ffff00",
    # Dutch
    "marineblauw": "#000080", "blauw": "#0000ff", "groen": "#008000", "rood": "#ff0000",
    "geel": "#ffff00", "oranje": "#ffa500", "paars": "#800080", "bruin": "#8b4513",
}  # fmt: skip
# Neutrals: named so they are not mistaken for hues ("rose" inside "rosewood" is not matched either).
_NEUTRAL: dict[str, str] = {
    "white": "#ffffff", "off-white": "#faf9f6", "off white": "#faf9f6", "cream": "#fffdd0",
    "ivory": "#fffff0", "beige": "#f5f5dc", "sand": "#c2b280", "stone": "#d6d3cd",
    "black": "#000000", "charcoal": "#36454f", "grey": "#808080", "gray": "#808080",
    "silver": "#c0c0c0", "taupe": "#483c32", "linen": "#faf0e6", "ecru": "#c2b280",
    "blanco": "#ffffff", "negro": "#000000", "gris": "#808080", "crema": "#fffdd0",
    "blanc": "#ffffff", "noir": "#000000", "crème": "#fffdd0", "weiß": "#ffffff",
    "weiss": "#ffffff", "schwarz": "#000000", "grau": "#808080", "bianco": "#ffffff",
    "nero": "#000000", "grigio": "#808080", "branco": "#ffffff", "preto": "#000000",
    "cinza": "#808080", "wit": "#ffffff", "zwart": "#000000", "grijs": "#808080",
}  # fmt: skip
_NAMES = {**_HUED, **_NEUTRAL}
_PHRASES = sorted(_NAMES, key=lambda n: (-len(n), n))
_NAME_RE = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(n) for n in _PHRASES) + r")(?![\w-])", re.IGNORECASE
)
_HEX_RE = re.compile(r"(?<![\w#])#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})(?![0-9a-fA-F\w])")


@dataclass(frozen=True)
class HintColour:
    """One colour a hint names (`navy`) or gives (`#0b3d91`), with its hue when it has one."""

    name: str
    hex: str
    hue: float | None  # degrees, None for a neutral

    def label(self) -> str:
        return self.hex if self.name == self.hex else f"{self.name} {self.hex}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "hex": self.hex, "hue": None if self.hue is None else round(self.hue)}


def _expand(code: str) -> str:
    code = code.lower()
    return "#" + (code if len(code) == 6 else "".join(c * 2 for c in code))


def hue_of(colour: str) -> float | None:
    """HSL hue in degrees, or None for a colour too grey to have one."""
    r, g, b = parse_hex(colour)
    if (max(r, g, b) - min(r, g, b)) / 255 < MIN_CHROMA:
        return None
    h, _, _ = colorsys.rgb_to_hls(r / 255, g / 255, b / 255)
    return h * 360.0


def hue_distance(a: float, b: float) -> float:
    """The shorter way round the colour wheel, 0 to 180 degrees."""
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def hint_colours(hint: str | None) -> list[HintColour]:
    """Every colour `hint` names or gives, in the order written, without repeats."""
    text = hint or ""
    found: list[tuple[int, HintColour]] = []
    for match in _NAME_RE.finditer(text):
        name = match.group(1).lower()
        hex_ = _NAMES[name]
        hue = hue_of(hex_) if name in _HUED else None
        found.append((match.start(), HintColour(name, hex_, hue)))
    for match in _HEX_RE.finditer(text):
        hex_ = _expand(match.group(1))
        found.append((match.start(), HintColour(hex_, hex_, hue_of(hex_))))
    out: list[HintColour] = []
    for _, colour in sorted(found, key=lambda pair: pair[0]):
        if colour.hex not in {c.hex for c in out}:
            out.append(colour)
    return out


def hued(colours: list[HintColour]) -> list[HintColour]:
    return [c for c in colours if c.hue is not None]


@dataclass(frozen=True)
class HueResult:
    """One palette role measured against the hint's hues."""

    role: str
    hex: str
    hue: float | None
    nearest: HintColour
    distance: float  # 180 when the role has no hue

    @property
    def passes(self) -> bool:
        return self.distance <= MAX_HUE_DISTANCE

    def sentence(self, wanted: list[HintColour]) -> str:
        names = ", ".join(c.label() for c in wanted)
        if self.hue is None:
            return (
                f"palette.{self.role} {self.hex} is grey (no hue), but the palette hint asks for "
                f"{names}: make {self.role} a colour within {MAX_HUE_DISTANCE:g}° of one of them"
            )
        return (
            f"palette.{self.role} {self.hex} has hue {self.hue:.0f}°, {self.distance:.0f}° from the "
            f"nearest colour of the palette hint ({self.nearest.label()}, hue {self.nearest.hue:.0f}°); "
            f"keep it within {MAX_HUE_DISTANCE:g}° of one of: {names}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "hex": self.hex,
            "hue": None if self.hue is None else round(self.hue),
            "nearest": self.nearest.as_dict(),
            "distance": round(self.distance, 1),
            "maximum": MAX_HUE_DISTANCE,
            "passes": self.passes,
        }


def hue_report(palette: dict[str, str], hint: str | None) -> list[HueResult]:
    """Each hued role against the hint's nearest hue; empty when the hint names no hue."""
    wanted = hued(hint_colours(hint))
    if not wanted:
        return []
    out = []
    for role in HUED_ROLES:
        hue = hue_of(palette[role])
        if hue is None:
            out.append(HueResult(role, palette[role], None, wanted[0], 180.0))
            continue
        nearest = min(wanted, key=lambda c: hue_distance(hue, c.hue or 0.0))
        out.append(HueResult(role, palette[role], hue, nearest, hue_distance(hue, nearest.hue or 0.0)))
    return out


def hue_problems(palette: dict[str, str], hint: str | None) -> list[str]:
    """Sentences for the designer: each role whose hue strays from every hue the hint asks for."""
    wanted = hued(hint_colours(hint))
    return [r.sentence(wanted) for r in hue_report(palette, hint) if not r.passes]


def rotate_to(colour: str, hue: float) -> str:
    """`colour` with its hue set to `hue`, keeping lightness and (at least some) saturation."""
    r, g, b = parse_hex(colour)
    _, lightness, saturation = colorsys.rgb_to_hls(r / 255, g / 255, b / 255)
    # A grey has no saturation to keep: give it enough to carry the hue, darkness kept.
    saturation = max(saturation, 0.55)
    lightness = min(max(lightness, 0.15), 0.85)
    nr, ng, nb = colorsys.hls_to_rgb(hue / 360.0, lightness, saturation)
    return to_hex((nr * 255, ng * 255, nb * 255))


def fix_hues(palette: dict[str, str], hint: str | None) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """A palette whose hued roles take the nearest hinted hue (contrast is fixed afterwards)."""
    fixed = dict(palette)
    notes: list[dict[str, Any]] = []
    for result in hue_report(palette, hint):
        if result.passes:
            continue
        target = result.nearest.hue or 0.0
        after = rotate_to(result.hex, target)
        fixed[result.role] = after
        notes.append(
            {
                "part": "design",
                "field": f"palette.{result.role}",
                "from": result.hex,
                "to": after,
                "reason": (
                    "grey, the palette hint asks for a hue"
                    if result.hue is None
                    else f"hue {result.hue:.0f}° is {result.distance:.0f}° from the palette hint's "
                    f"{result.nearest.label()}"
                )
                + f"; turned to hue {target:.0f}°",
            }
        )
    return fixed, notes
