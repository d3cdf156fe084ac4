"""The object-store interface: R2 in production, a local folder by default."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


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
        the current ETag (raises `AlreadyExists` on mismatch).
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
