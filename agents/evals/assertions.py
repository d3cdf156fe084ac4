"""Assertion types of an eval case; each says why it failed, or None when it passed.

In `cases.jsonl`, a case's `"assert"` list holds objects like
`{"type": "length", "field": "title", "max": 70}`. Field paths are dotted and walk into
lists: `"bullets"` is the list, `"image_alts.alt"` every image's alt text.
"""

from __future__ import annotations

import html
import re
from abc import abstractmethod
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agents.evals.grounding import ungrounded

# Hype a storefront shouldn't print; `banned_phrases` uses these unless a case gives its own.
DEFAULT_BANNED = (
    "revolutionary",
    "game-changer",
    "game changer",
    "must-have",
    "world-class",
    "best-in-class",
    "unparalleled",
    "cutting-edge",
    "next level",
    "elevate your",
    "look no further",
    "second to none",
    "like never before",
    "ultimate",
)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


class Observed(Protocol):
    """What an assertion looks at: one case run on one version."""

    @property
    def output(self) -> dict[str, Any] | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def repaired(self) -> bool: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def input_text(self) -> str: ...


def values_at(data: Any, path: str | None) -> list[Any]:
    """Values at a dotted path; a list on the way is walked item by item."""
    current = [data]
    for part in (path or "").split(".") if path else []:
        following: list[Any] = []
        for value in current:
            items = value if isinstance(value, list) else [value]
            following.extend(item[part] for item in items if isinstance(item, dict) and part in item)
        current = following
    return current


def _strings(value: Any, skip_ids: bool = False) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, skip_ids)
    elif isinstance(value, dict):
        for key, item in value.items():
            if skip_ids and (key == "id" or key.endswith("_id")):
                continue
            yield from _strings(item, skip_ids)


def as_text(value: Any, *, skip_ids: bool = False) -> str:
    """Every string under `value`, markup stripped and entities decoded, one space between words."""
    joined = " \n ".join(_strings(value, skip_ids))
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", joined))).strip()


def _contains(text: str, phrase: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(phrase.lower()) + r"(?!\w)", text.lower()) is not None


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # False for assertions about the call itself (cost, latency), checked even without output.
    needs_output: ClassVar[bool] = True

    @abstractmethod
    def check(self, seen: Observed) -> str | None:
        """None when the assertion holds, else the reason it failed."""


class SchemaValid(_Base):
    """The output validated against the output model (after at most one repair, unless forbidden)."""

    type: Literal["schema_valid"]
    allow_repair: bool = True

    def check(self, seen: Observed) -> str | None:
        if seen.output is None:
            return seen.error or "no output"
        if seen.repaired and not self.allow_repair:
            return "valid only after a repair"
        return None


class Length(_Base):
    """Characters of a string, or items of a list; `each` checks every item of a list."""

    type: Literal["length"]
    field: str
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    each: bool = False

    def check(self, seen: Observed) -> str | None:
        values = values_at(seen.output, self.field)
        if not values:
            return f"{self.field}: missing"
        if self.each:
            values = [item for v in values for item in (v if isinstance(v, list) else [v])]
        for value in values:
            size = len(value) if isinstance(value, (str, list)) else len(str(value))
            unit = "items" if isinstance(value, list) else "characters"
            if self.min is not None and size < self.min:
                return f"{self.field}: {size} {unit}, fewer than {self.min}"
            if self.max is not None and size > self.max:
                return f"{self.field}: {size} {unit}, more than {self.max}"
        return None


class MustContain(_Base):
    """Every phrase appears (case-insensitive, whole words) in the field, or anywhere in the output."""

    type: Literal["must_contain"]
    values: list[str] = Field(min_length=1)
    field: str | None = None

    def check(self, seen: Observed) -> str | None:
        text = as_text(values_at(seen.output, self.field))
        missing = [v for v in self.values if not _contains(text, v)]
        return f"{self.field or 'output'} lacks {', '.join(map(repr, missing))}" if missing else None


class MustNotContain(_Base):
    """No phrase appears (case-insensitive, whole words) in the field, or anywhere in the output."""

    type: Literal["must_not_contain"]
    values: list[str] = Field(min_length=1)
    field: str | None = None

    def check(self, seen: Observed) -> str | None:
        text = as_text(values_at(seen.output, self.field))
        found = [v for v in self.values if _contains(text, v)]
        return f"{self.field or 'output'} contains {', '.join(map(repr, found))}" if found else None


class BannedPhrases(_Base):
    """No hype phrase (the built-in list, or the case's own) appears anywhere in the output."""

    type: Literal["banned_phrases"]
    phrases: list[str] | None = None
    field: str | None = None

    def check(self, seen: Observed) -> str | None:
        text = as_text(values_at(seen.output, self.field))
        found = [p for p in (self.phrases or DEFAULT_BANNED) if _contains(text, p)]
        return f"banned phrase(s) {', '.join(map(repr, found))}" if found else None


class Grounded(_Base):
    """Every number and material named in the output (or in `fields`) appears in the input."""

    type: Literal["grounded"]
    fields: list[str] | None = None
    materials: list[str] = Field(default_factory=list, description="extra material names to check")

    def check(self, seen: Observed) -> str | None:
        if self.fields:
            text = " \n ".join(as_text(values_at(seen.output, f), skip_ids=True) for f in self.fields)
        else:
            text = as_text(seen.output, skip_ids=True)
        problems = ungrounded(text, seen.input_text, extra_materials=self.materials)
        return "not in the input: " + ", ".join(problems) if problems else None


class MaxCost(_Base):
    """What the case cost (every call, repairs included) stays at or under `value` dollars."""

    type: Literal["max_cost_usd"]
    value: float = Field(ge=0)
    needs_output: ClassVar[bool] = False

    def check(self, seen: Observed) -> str | None:
        return f"cost ${seen.cost_usd:.6f} > ${self.value:g}" if seen.cost_usd > self.value else None


class MaxLatency(_Base):
    """Time spent in model calls (repairs included) stays at or under `value` milliseconds."""

    type: Literal["max_latency_ms"]
    value: float = Field(gt=0)
    needs_output: ClassVar[bool] = False

    def check(self, seen: Observed) -> str | None:
        if seen.latency_ms > self.value:
            return f"latency {seen.latency_ms:.0f} ms > {self.value:g} ms"
        return None


Assertion = Annotated[
    SchemaValid | Length | MustContain | MustNotContain | BannedPhrases | Grounded | MaxCost | MaxLatency,
    Field(discriminator="type"),
]
ASSERTIONS: TypeAdapter[list[Assertion]] = TypeAdapter(list[Assertion])


def check_all(assertions: list[Assertion], seen: Observed) -> list[tuple[str, str | None]]:
    """(type, reason or None) per assertion; with no output, output assertions fail with the error."""
    results: list[tuple[str, str | None]] = []
    for assertion in assertions:
        if seen.output is None and assertion.needs_output and assertion.type != "schema_valid":
            results.append((assertion.type, f"no output ({seen.error or 'unknown error'})"))
        else:
            results.append((assertion.type, assertion.check(seen)))
    return results
