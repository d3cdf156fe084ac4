"""CSS the models touch, parsed with tinycss2: lengths, an allowlist for declarations, a final guard.

Nothing a model writes reaches a stylesheet as text: declarations are parsed, kept only
when the property is allowlisted and every value token is plain (keywords, numbers,
dimensions), and re-serialized from the tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import tinycss2
from tinycss2 import ast

PX_PER_EM = 16.0
LENGTH_UNITS = {"px": 1.0, "rem": PX_PER_EM, "em": PX_PER_EM}


def length_px(value: str) -> float:
    """A CSS length ('4px', '0.5rem', '0') in pixels; ValueError naming what is wrong."""
    tokens = [t for t in tinycss2.parse_component_value_list(value) if t.type != "whitespace"]
    if len(tokens) != 1:
        raise ValueError(f"{value!r} is not a single CSS length")
    token = tokens[0]
    if token.type == "number" and token.value == 0:
        return 0.0
    if token.type == "dimension" and token.lower_unit in LENGTH_UNITS:
        return float(token.value) * LENGTH_UNITS[token.lower_unit]
    raise ValueError(f"{value!r} is not a CSS length in px, rem or em")


# --- model-supplied declarations ------------------------------------------------

_KEYWORDS: dict[str, set[str]] = {
    "text-transform": {"none", "uppercase", "lowercase", "capitalize"},
    "font-style": {"normal", "italic"},
    "font-variant": {"normal", "small-caps"},
    "font-weight": {"normal", "bold"},
    "text-decoration-line": {"none", "underline"},
    "text-align": {"left", "center", "right", "start", "end"},
    "letter-spacing": {"normal"},
    "word-spacing": {"normal"},
    "line-height": {"normal"},
    "border-style": {"none", "solid", "dashed", "dotted", "double"},
    "border-width": {"thin", "medium"},
}
# Numeric bounds per property: (unitless numbers, lengths in px); None where not allowed.
_NUMBERS: dict[str, tuple[tuple[float, float] | None, tuple[float, float] | None]] = {
    "font-weight": ((100, 900), None),
    "letter-spacing": (None, (-2, 8)),
    "word-spacing": (None, (-2, 16)),
    "line-height": ((0.8, 3), (10, 64)),
    "border-width": (None, (0, 4)),
}
ALLOWED_PROPERTIES = frozenset(_KEYWORDS)


@dataclass(frozen=True)
class Dropped:
    """A declaration (or rule) taken out of model CSS, and why (never the model's text itself)."""

    property: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"property": self.property, "reason": self.reason}


_NAME = re.compile(r"^-?[a-z][a-z-]{0,39}$")


def _value_problem(prop: str, tokens: list[Any]) -> str | None:
    meaningful = [t for t in tokens if t.type != "whitespace"]
    if len(meaningful) != 1:
        return "only single-value declarations are allowed"
    token = meaningful[0]
    if token.type == "ident":
        return None if token.lower_value in _KEYWORDS[prop] else f"keyword {token.value!r} is not allowed"
    unitless, lengths = _NUMBERS.get(prop, (None, None))
    if token.type == "number" and token.value == 0 and lengths is not None:
        return None
    if token.type == "number" and unitless is not None:
        number, (low, high) = float(token.value), unitless
    elif token.type == "dimension" and token.lower_unit in LENGTH_UNITS and lengths is not None:
        number, (low, high) = float(token.value) * LENGTH_UNITS[token.lower_unit], lengths
    else:
        return f"{token.type} values are not allowed for {prop} (no functions, urls, strings or colours)"
    if not low <= number <= high:
        return f"{tinycss2.serialize([token])} is outside {low:g}..{high:g}"
    return None


def sanitize_declarations(text: str) -> tuple[str, list[Dropped]]:
    """Model CSS -> allowlisted declarations ('prop: value; ...') and what was dropped."""
    kept: list[str] = []
    dropped: list[Dropped] = []
    for node in tinycss2.parse_blocks_contents(text or "", skip_comments=True, skip_whitespace=True):
        if isinstance(node, ast.Declaration):
            prop = node.lower_name
            name = prop if _NAME.fullmatch(prop) else "(unreadable)"
            if prop not in ALLOWED_PROPERTIES:
                dropped.append(Dropped(name, "property is not allowed"))
                continue
            problem = _value_problem(prop, node.value)
            if problem:
                dropped.append(Dropped(name, problem))
                continue
            value = tinycss2.serialize([t for t in node.value if t.type != "whitespace"])
            kept.append(f"{prop}: {value}")
        elif isinstance(node, ast.AtRule):
            dropped.append(Dropped("(at-rule)", "at-rules are not allowed"))
        elif isinstance(node, ast.QualifiedRule):
            dropped.append(Dropped("(rule)", "selectors and rules are not allowed, only declarations"))
        else:
            dropped.append(Dropped("(text)", "not a CSS declaration"))
    return "; ".join(kept), dropped


# --- the final guard on every published stylesheet -------------------------------

# Functions the project's own stylesheets use; anything else (url, expression, image-set,
# attr, element ...) means something got through that must not.
SAFE_FUNCTIONS = frozenset(
    {"var", "calc", "clamp", "min", "max", "color-mix", "linear-gradient", "repeat", "minmax", "inset"}
)
# At-rules the project's own stylesheets use; their blocks are checked like the rest.
SAFE_AT_RULES = frozenset({"media"})


def stylesheet_problems(css: str) -> list[str]:
    """Why a stylesheet must not be published: at-rules, URLs, unknown functions, parse errors."""
    problems: list[str] = []

    def walk(tokens: list[Any] | None, where: str) -> None:
        for token in tokens or []:
            kind = token.type
            if kind == "url":
                problems.append(f"{where}: url() is not allowed")
            elif kind == "function":
                if token.lower_name not in SAFE_FUNCTIONS:
                    problems.append(f"{where}: function {token.lower_name}() is not allowed")
                walk(token.arguments, where)
            elif kind in ("() block", "[] block", "{} block"):
                walk(token.content, where)
            elif kind == "at-keyword":
                problems.append(f"{where}: @{token.value} is not allowed")
            elif kind == "error":
                problems.append(f"{where}: parse error {token.message}")

    def rules(nodes: list[Any]) -> None:
        for rule in nodes:
            if rule.type == "at-rule":
                if rule.lower_at_keyword not in SAFE_AT_RULES or rule.content is None:
                    problems.append(f"@{rule.at_keyword} rules are not allowed")
                    continue
                walk(rule.prelude, f"@{rule.lower_at_keyword}")
                rules(tinycss2.parse_rule_list(rule.content, skip_comments=True, skip_whitespace=True))
            elif rule.type == "error":
                problems.append(f"parse error: {rule.message}")
            elif rule.type == "qualified-rule":
                declarations(rule)

    def declarations(rule: Any) -> None:
        selector = tinycss2.serialize(rule.prelude).strip()[:60]
        walk(rule.prelude, selector)
        for decl in tinycss2.parse_blocks_contents(rule.content, skip_comments=True, skip_whitespace=True):
            if decl.type == "declaration":
                walk(decl.value, f"{selector} {decl.lower_name}")
            elif decl.type == "at-rule":
                problems.append(f"{selector}: @{decl.at_keyword} is not allowed")
            elif decl.type == "error":
                problems.append(f"{selector}: parse error {decl.message}")
            else:
                problems.append(f"{selector}: nested rules are not allowed")

    rules(tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True))
    return problems
