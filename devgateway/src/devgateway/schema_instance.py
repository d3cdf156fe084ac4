"""Deterministic instances of JSON schemas (as pydantic v2 emits them), written in the prompt's words."""

from __future__ import annotations

import copy
import math
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from devgateway.patterns import (
    looks_like_hex_colour_pattern,
    matching_string,
    palette_colour,
)
from devgateway.prompt import Material
from devgateway.text import (
    FALLBACK_WORDS,
    HOSTILE_PAYLOADS,
    fit_text,
    formatted_value,
    hostile_text,
)

__all__ = ["HOSTILE_PAYLOADS", "make_instance", "make_json_object", "make_text", "violate"]

_MAX_DEPTH = 6
_SHORT = ("title", "name", "headline", "heading", "label", "cta", "button", "alt", "caption")
_MEDIUM = ("tagline", "subtitle", "subheading", "slogan", "hook", "teaser")
_LONG = (
    "description",
    "body",
    "copy",
    "summary",
    "text",
    "content",
    "paragraph",
    "bio",
    "story",
    "reason",
    "rationale",
    "explanation",
    "message",
    "brief",
)
_TAGGY = ("tag", "keyword", "category", "segment", "slug", "locale", "style")


# litellm moves constraints Anthropic's native structured outputs reject into the description
# ("Note: minimum length: 5, maximum length: 60."); a real model reads them, and so do we.
_NOTE_LABELS = {
    "minimum number of items": "minItems",
    "maximum number of items": "maxItems",
    "minimum value": "minimum",
    "maximum value": "maximum",
    "exclusive minimum value": "exclusiveMinimum",
    "exclusive maximum value": "exclusiveMaximum",
    "minimum length": "minLength",
    "maximum length": "maxLength",
    "minimum number of properties": "minProperties",
    "maximum number of properties": "maxProperties",
}
_NOTE = re.compile(r"(?:^|[\s,])((?:exclusive )?(?:minimum|maximum)[a-z ]*?): (-?\d+(?:\.\d+)?)")
_NOTE_MULTIPLE = re.compile(r"must be a multiple of (\d+(?:\.\d+)?)")


def _with_notes(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with constraints restored from a litellm "Note: ..." description."""
    description = schema.get("description")
    if not isinstance(description, str) or "Note: " not in description:
        return schema
    note = description.rsplit("Note: ", 1)[1]
    restored = dict(schema)
    for label, raw in _NOTE.findall(note):
        key = _NOTE_LABELS.get(label.strip())
        if key is not None and key not in restored:
            restored[key] = float(raw) if "." in raw else int(raw)
    multiple = _NOTE_MULTIPLE.search(note)
    if multiple and "multipleOf" not in restored:
        restored["multipleOf"] = float(multiple[1]) if "." in multiple[1] else int(multiple[1])
    if "all array items must be unique" in note:
        restored.setdefault("uniqueItems", True)
    return restored


def _hint(name: str, hints: tuple[str, ...]) -> bool:
    return any(h in name for h in hints)


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, step: float) -> float | None:
    """A numeric bound from `schema`, an exclusive one nudged inwards by `step`."""
    value = schema.get(exclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) + step
    value = schema.get(inclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class _Generator:
    """One walk over one schema with one seeded random stream."""

    def __init__(
        self,
        root: dict[str, Any],
        material: Material,
        rng: random.Random,
        hostile: bool,
        payloads: Sequence[str] = HOSTILE_PAYLOADS,
    ) -> None:
        self.root = root
        self.words = list(material.words) or list(FALLBACK_WORDS)
        self.ids = list(material.candidate_ids)
        self.hints = tuple(material.hint_colours)
        self.rng = rng
        self.hostile = hostile
        self.payloads = payloads or HOSTILE_PAYLOADS

    # --- schema plumbing ----------------------------------------------------

    def resolve(self, schema: Any, seen: int = 0) -> dict[str, Any]:
        """Follow `$ref` and merge `allOf` into one plain schema dict."""
        if schema is True or schema is None:
            return {}
        if schema is False or not isinstance(schema, dict):
            return {}
        if "$ref" in schema and seen < 32:
            target = self._pointer(str(schema["$ref"]))
            merged = {**self.resolve(target, seen + 1), **{k: v for k, v in schema.items() if k != "$ref"}}
            return merged
        if "allOf" in schema and isinstance(schema["allOf"], list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                sub = self.resolve(part, seen + 1)
                for key, value in sub.items():
                    if key == "properties":
                        merged["properties"] = {**merged.get("properties", {}), **value}
                    elif key == "required":
                        merged["required"] = [*merged.get("required", []), *value]
                    else:
                        merged.setdefault(key, value)
            return merged
        return schema

    def _pointer(self, ref: str) -> Any:
        path = ref.split("#", 1)[-1]
        node: Any = self.root
        for raw in (p for p in path.split("/") if p):
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return {}
        return node

    @staticmethod
    def _type(schema: dict[str, Any]) -> str | None:
        kind = schema.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            return str(non_null[0]) if non_null else "null"
        if isinstance(kind, str):
            return kind
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return None

    # --- values -------------------------------------------------------------

    def value(self, schema: Any, name: str, depth: int) -> Any:
        """An instance of `schema` for a field called `name`."""
        schema = _with_notes(self.resolve(schema))
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            options = [v for v in schema["enum"] if v is not None] or schema["enum"]
            return copy.deepcopy(self.rng.choice(options))
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self.value(self._pick_variant(schema, key, depth), name, depth)
        kind = self._type(schema)
        if kind == "object":
            return self.obj(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind == "integer":
            return self.number(schema, name, integer=True)
        if kind == "number":
            return self.number(schema, name, integer=False)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(schema, name)

    def _pick_variant(self, schema: dict[str, Any], key: str, depth: int) -> dict[str, Any]:
        variants = [self.resolve(v) for v in schema[key]]
        siblings = {k: v for k, v in schema.items() if k not in (key, "default")}
        non_null = [v for v in variants if v.get("type") != "null"]
        if depth >= _MAX_DEPTH and len(non_null) < len(variants):
            return {"type": "null"}
        chosen = non_null[0] if non_null else variants[0]
        return {**siblings, **chosen}

    def obj(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        """An object with every required property (and optional ones while shallow)."""
        props = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        out: dict[str, Any] = {}
        for prop, sub in props.items():
            if prop in required or depth < _MAX_DEPTH - 2:
                out[prop] = self.value(sub, prop, depth + 1)
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict) and depth < _MAX_DEPTH:
            count = max(int(schema.get("minProperties") or 0), 2)
            if schema.get("maxProperties") is not None:
                count = min(count, int(schema["maxProperties"]))
            for i in range(count):
                key = f"{self._word().lower()}_{i}" if i else self._word().lower()
                out[key] = self.value(extra, key, depth + 1)
        return out

    def array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        """A list honouring minItems/maxItems, prefixItems and uniqueItems."""
        low = int(schema.get("minItems") or 0)
        high = schema.get("maxItems")
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            items = [self.value(sub, name, depth + 1) for sub in prefix]
            return items[: int(high)] if high is not None else items
        count = low if depth >= _MAX_DEPTH else self.rng.randint(max(low, 1), max(low, 1) + 2)
        if high is not None:
            count = min(count, int(high))
        item_schema = self.resolve(schema.get("items", {}))
        if self._is_ids(name) and self.ids and not self.hostile:
            return self._pick_ids(item_schema, count)
        out: list[Any] = []
        seen: set[str] = set()
        for _ in range(count):
            value = self.value(item_schema, name, depth + 1)
            if schema.get("uniqueItems"):
                for _retry in range(6):
                    if repr(value) not in seen:
                        break
                    value = self.value(item_schema, name, depth + 1)
                seen.add(repr(value))
            out.append(value)
        return out

    @staticmethod
    def _is_ids(name: str) -> bool:
        lowered = name.lower()
        return lowered == "ids" or lowered.endswith(("_ids", "ids"))

    def _pick_ids(self, item_schema: dict[str, Any], count: int) -> list[Any]:
        pool = list(self.ids)
        self.rng.shuffle(pool)
        picked = pool[:count]
        while len(picked) < count:
            picked.append(self.rng.choice(self.ids))
        kind = self._type(item_schema)
        if kind == "integer":
            return [int(v) if str(v).lstrip("-").isdigit() else v for v in picked]
        if kind == "string":
            return [str(v) for v in picked]
        return picked

    def number(self, schema: dict[str, Any], name: str, integer: bool) -> int | float:
        """A number inside minimum/maximum (exclusive bounds and multipleOf honoured)."""
        step = 1.0 if integer else 0.01
        low = _bound(schema, "minimum", "exclusiveMinimum", step)
        high = _bound(schema, "maximum", "exclusiveMaximum", -step)
        lowered = name.lower()
        span = (1.0, 10.0) if _hint(lowered, ("count", "quantity", "qty")) else (0.0, 100.0)
        if _hint(lowered, ("price", "amount", "cost")):
            span = (5.0, 200.0)
        if low is None and high is None:
            low, high = span
        elif low is None:
            low = min(span[0], high if high is not None else span[0])
        elif high is None:
            high = low + span[1]
        assert low is not None and high is not None
        if integer:
            lo_i, hi_i = math.ceil(low), math.floor(high)
            value = self.rng.randint(lo_i, max(lo_i, hi_i))
            multiple = schema.get("multipleOf")
            if isinstance(multiple, int) and multiple > 0:
                snapped = (value // multiple) * multiple
                value = snapped if snapped >= lo_i else snapped + multiple
            return value
        number = round(self.rng.uniform(low, high), 2)
        if not low <= number <= high:
            number = (low + high) / 2
        return number

    # --- strings ------------------------------------------------------------

    def _word(self) -> str:
        return self.rng.choice(self.words)

    def _run(self, count: int) -> list[str]:
        words = self.words
        start = self.rng.randrange(len(words))
        run = words[start : start + count]
        while len(run) < count:
            run += words[: count - len(run)]
        return run

    def _filler(self, count: int) -> Callable[[], list[str]]:
        return lambda: self._run(count)

    def sentence(self, low: int, high: int, sentence: bool = True) -> str:
        """A run of the prompt's own words, capitalised (and full-stopped) when `sentence`."""
        words = self._run(self.rng.randint(low, high))
        text = " ".join(words)
        if sentence and text:
            text = text[0].upper() + text[1:]
            if text[-1] not in ".!?":
                text += "."
        return text

    def string(self, schema: dict[str, Any], name: str) -> str:
        """A string within minLength/maxLength; shaped by format, pattern and the field's name."""
        low = int(schema.get("minLength") or 0)
        high = schema.get("maxLength")
        high = int(high) if high is not None else None
        lowered = name.lower()
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            return self._patterned(pattern, lowered, low, high)
        fmt = schema.get("format")
        if self.hostile:
            if fmt in ("uri", "url", "iri", "uri-reference"):
                return fit_text("javascript:alert(1)", low, high, list(self.payloads))
            if fmt is None:
                return hostile_text(self.rng, low, high, self.payloads)
        if isinstance(fmt, str):
            formatted = formatted_value(fmt, self.rng, self._word())
            if formatted is not None:
                return fit_text(formatted, low, high, self._filler(8))
        if _hint(lowered, ("colour", "color", "hex")):
            return fit_text(palette_colour(lowered, self.rng, self.hints), low, high, self._filler(4))
        if (lowered == "id" or lowered.endswith("_id")) and self.ids:
            return fit_text(str(self.rng.choice(self.ids)), low, high, self._filler(4))
        if lowered.endswith("html") or lowered == "html":
            return self._html(low, high)
        return fit_text(self._text_for(lowered), low, high, self._filler(40))

    def _text_for(self, name: str) -> str:
        if _hint(name, _TAGGY):
            return self.sentence(1, 2, sentence=False).lower()
        if _hint(name, _SHORT):
            return " ".join(w[:1].upper() + w[1:] for w in self.sentence(2, 6, sentence=False).split())
        if _hint(name, _MEDIUM):
            return self.sentence(5, 10)
        if _hint(name, _LONG):
            return self.sentence(16, 36)
        return self.sentence(3, 8)

    def _html(self, low: int, high: int | None) -> str:
        inner_high = None if high is None else high - len("<p></p>")
        if inner_high is not None and inner_high < 1:
            return fit_text(self.sentence(2, 6), low, high, self._filler(40))
        inner = fit_text(self.sentence(14, 32), max(0, low - 7), inner_high, self._filler(40))
        return f"<p>{inner}</p>"

    def _patterned(self, pattern: str, name: str, low: int, high: int | None) -> str:
        if looks_like_hex_colour_pattern(pattern):
            colour = palette_colour(name, self.rng, self.hints)
            candidates = [colour, colour[:4] if len(colour) == 7 else colour]
            for candidate in candidates:
                if self._fits(candidate, pattern, low, high):
                    return candidate
        if self.hostile:
            for payload in self.payloads:
                if self._fits(payload, pattern, low, high):
                    return payload
        slug = "-".join(w.lower() for w in self._run(3) if w.isascii())
        if slug and self._fits(slug, pattern, low, high):
            return slug
        generated = matching_string(pattern, self.rng, low, high)
        if generated is not None:
            return generated
        return fit_text(self.sentence(2, 5, sentence=False), low, high, self._filler(20))

    @staticmethod
    def _fits(value: str, pattern: str, low: int, high: int | None) -> bool:
        if len(value) < low or (high is not None and len(value) > high):
            return False
        try:
            return re.search(pattern, value) is not None
        except re.error:
            return False


def make_instance(
    schema: dict[str, Any],
    material: Material,
    seed: int,
    hostile: bool = False,
    payloads: Sequence[str] = HOSTILE_PAYLOADS,
) -> Any:
    """A deterministic instance of `schema` written in `material`'s words (XSS payloads if `hostile`)."""
    gen = _Generator(schema, material, random.Random(seed), hostile, payloads)
    return gen.value(schema, "", 0)


def make_text(
    material: Material, seed: int, hostile: bool = False, payloads: Sequence[str] = HOSTILE_PAYLOADS
) -> str:
    """A plain-text answer: a run of the prompt's words, or payloads when `hostile`."""
    gen = _Generator({}, material, random.Random(seed), hostile, payloads)
    if hostile:
        return " ".join(gen.rng.sample(list(gen.payloads), min(3, len(gen.payloads))))
    return gen.sentence(12, 30)


def make_json_object(
    material: Material, seed: int, hostile: bool = False, payloads: Sequence[str] = HOSTILE_PAYLOADS
) -> dict[str, Any]:
    """An answer for `response_format={"type": "json_object"}`."""
    return {"answer": make_text(material, seed, hostile, payloads)}


def violate(instance: Any, schema: dict[str, Any]) -> Any:
    """A copy of `instance` that breaks `schema`: a required field dropped, else a string made too long."""
    gen = _Generator(schema, Material(words=()), random.Random(0), False)
    resolved = gen.resolve(schema)
    if not isinstance(instance, dict):
        return {"unexpected": "not what the schema asked for"}
    broken = copy.deepcopy(instance)
    for key in resolved.get("required") or ():
        if key in broken:
            del broken[key]
            return broken
    for key, sub in (resolved.get("properties") or {}).items():
        sub = gen.resolve(sub)
        if sub.get("maxLength") is not None:
            broken[key] = "x" * (int(sub["maxLength"]) + 10)
            return broken
        if key in broken and sub.get("type") in ("string", "integer", "number", "boolean"):
            broken[key] = [broken[key]]
            return broken
    broken["__dev_gateway_invalid__"] = True
    return broken
