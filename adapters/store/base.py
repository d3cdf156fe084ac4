"""The object-store interface: R2 in production, a local folder by default."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.errors import InvalidInput

MAX_KEY_BYTES = 1024  # S3's and R2's limit
MAX_METADATA_BYTES = 2048  # S3's limit on user metadata (names + values)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_META_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")
_META_VALUE_RE = re.compile(r"^[\x20-\x7e]*$")


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)
    etag: str | None = None

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class ObjectStore(Protocol):
    """What the pipelines need of an object store; both implementations pass one test suite."""

    name: str

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/json",
        metadata: dict[str, str] | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        """Write `body` under `key`; return the new ETag.

        `if_none_match=True` is a conditional create (`If-None-Match: *`): raises
        `AlreadyExists` when the key is already there. `if_match` is a compare-and-swap on
        the current ETag (raises `AlreadyExists` on mismatch, `NotFound` when the key is gone).
        """
        ...

    def get(self, key: str) -> StoredObject:
        """Read `key`; raises `NotFound`."""
        ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix`, in lexical order."""
        ...

    def delete(self, key: str) -> None: ...

    def ping(self) -> None:
        """Raise a `StoreError` when the store cannot be reached."""
        ...


# --- shared checks: both stores accept and refuse exactly the same input ----------


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_key(key: Any) -> str:
    """Return `key` if it is a safe object key, else raise `InvalidInput` saying why."""
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"object key {_describe(key)} is invalid: expected a non-empty string")
    problem = _key_problem(key, allow_trailing_slash=False)
    if problem:
        raise InvalidInput(f"object key {_describe(key)} is invalid: {problem}")
    return key


def check_prefix(prefix: Any) -> str:
    """Return `prefix` if it is a safe listing prefix ('' lists everything), else raise `InvalidInput`."""
    if not isinstance(prefix, str):
        raise InvalidInput(f"prefix {_describe(prefix)} is invalid: expected a string")
    if prefix:
        problem = _key_problem(prefix, allow_trailing_slash=True)
        if problem:
            raise InvalidInput(f"prefix {_describe(prefix)} is invalid: {problem}")
    return prefix


def _key_problem(key: str, *, allow_trailing_slash: bool) -> str | None:
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"longer than {MAX_KEY_BYTES} bytes"
    if _CONTROL_RE.search(key):
        return "it contains NUL or another control character"
    if "\\" in key:
        return "it contains a backslash"
    if key.startswith("/"):
        return "it is absolute (starts with '/')"
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    segments = key.split("/")
    if allow_trailing_slash and key.endswith("/"):
        segments = segments[:-1]
    for segment in segments:
        if segment == "":
            return "it has an empty path segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return f"it has a {segment!r} path segment"
    return None


def normalize_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """Lower-case the names and check names and values fit S3 user metadata (ASCII, 2 KB)."""
    if not metadata:
        return {}
    out: dict[str, str] = {}
    for name, value in metadata.items():
        if not isinstance(name, str) or not _META_NAME_RE.fullmatch(name.lower()):
            raise InvalidInput(
                f"metadata name {_describe(name)} is invalid: it must match {_META_NAME_RE.pattern} "
                "after lower-casing"
            )
        if not isinstance(value, str) or not _META_VALUE_RE.fullmatch(value):
            raise InvalidInput(
                f"metadata value for {name!r} is invalid: it must be a string of printable ASCII"
            )
        out[name.lower()] = value
    if sum(len(k) + len(v) for k, v in out.items()) > MAX_METADATA_BYTES:
        raise InvalidInput(f"metadata is too large: at most {MAX_METADATA_BYTES} bytes of names and values")
    return out


def check_conditions(if_none_match: bool, if_match: str | None) -> None:
    """Refuse asking for a conditional create and a compare-and-swap at once."""
    if if_none_match and if_match is not None:
        raise InvalidInput("put: if_none_match and if_match cannot be combined")
    if if_match is not None and (not isinstance(if_match, str) or not if_match.strip('"')):
        raise InvalidInput(f"put: if_match {_describe(if_match)} is not an ETag")


def md5_etag(body: bytes) -> str:
    """The S3-style ETag of a single-part body: its md5 hex digest in double quotes."""
    return '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"'


def same_etag(a: str, b: str) -> bool:
    """Compare ETags the way S3 does: quotes optional."""
    return a.strip('"') == b.strip('"')


def check_body(body: Any, content_type: Any) -> bytes:
    """Return `body` as bytes after checking it and its content type are storable."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise InvalidInput(f"put: body must be bytes, not {type(body).__name__}")
    if not isinstance(content_type, str) or not content_type or not _META_VALUE_RE.fullmatch(content_type):
        raise InvalidInput(f"put: content type {_describe(content_type)} is not printable ASCII")
    return bytes(body)
