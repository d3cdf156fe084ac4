"""Read a Shopify products export one product at a time, so a large upload never sits parsed in memory.

Accepts what `agents.shopify.load_products` accepts: `{"products": [...]}` (other top-level
keys are skipped), a bare list, `{"product": {...}}` or one product. Parsed whole, the sample
exports take twice their size as Python objects; read this way an export of any size costs one
product and one 64 KB window.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import IO, Any

from adapters.errors import InvalidInput

CHUNK = 64 * 1024
_WS = " \t\r\n"
_decoder = json.JSONDecoder()


class _Reader:
    """A growing text window over a byte stream, consumed from the left."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.decode = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.consumed = 0  # characters dropped from the left, for error positions

    def more(self) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(CHUNK)
        try:
            text = self.decode.decode(chunk or b"", final=not chunk)
        except UnicodeDecodeError:
            raise InvalidInput("the export is not UTF-8 text") from None
        if not chunk:
            self.eof = True
        # Drop what was consumed before growing the window.
        self.consumed += self.pos
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-blank character ('' at the end), without consuming it."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = self.peek() or "the end"
            raise InvalidInput(
                f"the export is not valid JSON: expected {char!r} at character "
                f"{self.consumed + self.pos}, found {found!r}"
            )
        self.pos += 1

    def value(self) -> Any:
        """Decode one JSON value, reading more until it is complete."""
        self.peek()
        while True:
            try:
                value, end = _decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.more():
                    continue
                raise InvalidInput(
                    f"the export is not valid JSON: {exc.msg} at character {self.consumed + exc.pos}"
                ) from None
            if end == len(self.buf) and not self.eof and not isinstance(value, dict | list | str):
                self.more()  # a number or literal cut at the window's edge may go on
                continue
            self.pos = end
            return value


def _array(reader: _Reader) -> Iterator[Any]:
    reader.expect("[")
    if reader.peek() == "]":
        reader.pos += 1
        return
    while True:
        yield reader.value()
        if reader.peek() == ",":
            reader.pos += 1
            continue
        reader.expect("]")
        return


def iter_export(stream: IO[bytes]) -> Iterator[Any]:
    """Each product of a products export in `stream`, in order (not yet validated)."""
    reader = _Reader(stream)
    first = reader.peek()
    if first == "[":
        yield from _array(reader)
    elif first == "{":
        reader.pos += 1
        rest: dict[str, Any] = {}
        listed = False
        while reader.peek() != "}":
            if rest or listed:
                reader.expect(",")
            key = reader.value()
            if not isinstance(key, str):
                raise InvalidInput("the export is not valid JSON: an object key must be a string")
            reader.expect(":")
            if key == "products" and reader.peek() == "[":
                listed = True
                yield from _array(reader)
            else:
                rest[key] = reader.value()
        reader.pos += 1
        if not listed:
            yield rest["product"] if isinstance(rest.get("product"), dict) else rest
    else:
        raise InvalidInput('expected a product, a list of products or {"products": [...]}')
    if reader.peek() != "":
        raise InvalidInput("the export is not valid JSON: extra data after the products")
