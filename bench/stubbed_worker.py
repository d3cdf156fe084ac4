"""The pipeline's worker with named parts made free (`dramatiq bench.stubbed_worker:setup`), for bench.where.

`BENCH_STUB` names the parts, comma-separated; each stub keeps the job's outcome (every job
still ends `done`) and removes only that part's work:

- `objects`: the object store keeps objects in this process's memory (no files, no sidecars);
- `drafts`: `propose_copy` returns "live" without writing a draft, a copy or a Redis key;
- `ledger`: budget holds and settlements return at once (no script calls, no log line);
- `result_cache`: every job computes (no lock, no read, no write).

Never used outside benchmarks: a stubbed worker loses what the stubs skip.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from entrypoints.worker import setup as _setup

PARTS = ("objects", "drafts", "ledger", "result_cache")


def _memory_store() -> None:
    from adapters.errors import AlreadyExists, NotFound
    from adapters.store.base import StoredObject, md5_etag
    from adapters.store.local import LocalStore

    objects: dict[str, tuple[bytes, str, dict[str, str]]] = {}
    lock = threading.Lock()

    def put(self: Any, key: str, body: bytes, *, content_type: str = "application/json", **kw: Any) -> str:
        with lock:
            if kw.get("if_none_match") and key in objects:
                raise AlreadyExists(key)
            objects[key] = (body, content_type, dict(kw.get("metadata") or {}))
        return md5_etag(body)

    def get(self: Any, key: str) -> StoredObject:
        try:
            body, kind, meta = objects[key]
        except KeyError:
            raise NotFound(key) from None
        return StoredObject(key=key, body=body, content_type=kind, metadata=meta, etag=md5_etag(body))

    LocalStore.put = put  # type: ignore[method-assign]
    LocalStore.get = get  # type: ignore[method-assign]


def _no_drafts() -> None:
    import pipelines.product_copy as copy
    from pipelines.drafts_review import Proposed

    copy.propose_copy = lambda *a, **k: Proposed("00000000-0000-0000-0000-000000000000", True)


def _no_ledger() -> None:
    from pipelines.accounting import LedgerSink

    async def reserve(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    async def settle(self: Any, reservation: Any, record: Any) -> None:
        return None

    LedgerSink.reserve = reserve  # type: ignore[method-assign,assignment]
    LedgerSink.settle = settle  # type: ignore[method-assign]


def _no_result_cache() -> None:
    from pipelines.result_cache import Cached, ResultCache

    async def get_or_compute(self: Any, pipeline: str, key: str, compute: Any, **kwargs: Any) -> Cached:
        return Cached(await compute(), hit=False)

    ResultCache.get_or_compute = get_or_compute  # type: ignore[method-assign]


_STUBS = {
    "objects": _memory_store,
    "drafts": _no_drafts,
    "ledger": _no_ledger,
    "result_cache": _no_result_cache,
}


def setup() -> None:
    for part in filter(None, os.environ.get("BENCH_STUB", "").split(",")):
        _STUBS[part]()
    _setup()
