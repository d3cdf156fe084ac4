"""JSON decoded and encoded in small pieces, so a thread doing it lets the event loop run.

A thread does not free the event loop by itself: CPython's `json.loads` of a 4 MB catalog
holds the GIL for the whole call (~30 ms here), and the loop thread waits that long for it.
Decoding the outer objects and arrays member by member (`raw_decode` on each) hands the GIL
back between members (a product takes ~0.3 ms), so the loop waits one switch interval at most.
`canonical_chunks` does the same for the Idempotency-Key fingerprint.

The results are exactly those of `json.loads` and of `json.dumps(sort_keys=True,
separators=(",", ":"), default=str)`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"
DEPTH = 3  # containers nested deeper than this are decoded in one piece


def loads(raw: bytes) -> Any:
    """`json.loads(raw)`, in pieces; raises `json.JSONDecodeError` (or `UnicodeDecodeError`)."""
    text = raw.decode("utf-8")
    value, end = _value(text, _skip(text, 0), 0)
    end = _skip(text, end)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _expect(text: str, i: int, char: str, what: str) -> int:
    if i >= len(text) or text[i] != char:
        raise json.JSONDecodeError(f"Expecting {what}", text, i)
    return i + 1


def _value(text: str, i: int, depth: int) -> tuple[Any, int]:
    if depth >= DEPTH or i >= len(text) or text[i] not in "[{":
        return _DECODER.raw_decode(text, i)
    if text[i] == "[":
        items: list[Any] = []
        i = _skip(text, i + 1)
        if i < len(text) and text[i] == "]":
            return items, i + 1
        while True:
            item, i = _value(text, i, depth + 1)
            items.append(item)
            i = _skip(text, i)
            if i < len(text) and text[i] == "]":
                return items, i + 1
            i = _skip(text, _expect(text, i, ",", "',' delimiter"))
    obj: dict[str, Any] = {}
    i = _skip(text, i + 1)
    if i < len(text) and text[i] == "}":
        return obj, i + 1
    while True:
        if i >= len(text) or text[i] != '"':
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
        key, i = _DECODER.raw_decode(text, i)
        i = _skip(text, _expect(text, _skip(text, i), ":", "':' delimiter"))
        obj[key], i = _value(text, i, depth + 1)
        i = _skip(text, i)
        if i < len(text) and text[i] == "}":
            return obj, i + 1
        i = _skip(text, _expect(text, i, ",", "',' delimiter"))


def canonical_chunks(value: Any, depth: int = 0) -> Iterator[str]:
    """The pieces of `json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)`."""
    if depth < DEPTH and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        yield "{"
        for n, key in enumerate(sorted(value)):
            yield ("," if n else "") + json.dumps(key) + ":"
            yield from canonical_chunks(value[key], depth + 1)
        yield "}"
    elif depth < DEPTH and isinstance(value, list | tuple):
        yield "["
        for n, item in enumerate(value):
            if n:
                yield ","
            yield from canonical_chunks(item, depth + 1)
        yield "]"
    else:
        yield json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
