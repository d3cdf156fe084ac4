"""The store's catalog snapshot (`stores/{store}/catalog.json`): the products every pipeline starts from.

One format and one writer. An upload (`{"products": [...]}`, a list, or one product; a
storefront `products.json` or an Admin REST export), a Shopify sync and product webhooks all
write it here: `SnapshotBuilder` takes products one at a time (an upload streamed, a sync
page by page) and keeps only compact rows (pipelines/catalog_rows.py); `publish_snapshot`
writes the snapshot and its summary (`catalog-summary.json`: counts, source, skipped
products with their reasons); `apply_changes` folds product edits in with a compare-and-swap.

Every row is kept, drafts too; readers take only what shoppers may see (`parse_snapshot`,
`live_rows`). Workers read it through `SnapshotCache`, which trusts what it read for
`catalog_snapshot_ttl_s`, so the interactive lane does not wait on the object store for
every request.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

from adapters.errors import AlreadyExists, InvalidInput, NotFound, RetryableError
from adapters.logs import get_logger
from adapters.store import ObjectStore, put_json
from agents.shopify import load_products
from agents.shopify_export import iter_export
from domain.catalog import HIDDEN, LIVE, is_live, shopify_time
from domain.keys import catalog_snapshot_key, catalog_summary_key, check_store
from pipelines.background import keep
from pipelines.catalog_rows import Skipped, row_of, snapshot_row
from pipelines.cohorts import Candidate, Catalog
from pipelines.publish import now_iso

log = get_logger("pipelines.catalog_snapshot")
FORMAT = "wandstore-catalog/2"
MAX_SKIPPED_LISTED = 1000  # the summary lists this many skipped products (and counts them all)
CAS_ATTEMPTS = 8
SPOOL_BYTES = 1024 * 1024
DUPLICATE = "duplicate id: an earlier product in the catalog has it"

__all__ = [
    "SnapshotBuilder",
    "SnapshotCache",
    "apply_changes",
    "build_snapshot",
    "live_rows",
    "parse_snapshot",
    "publish_snapshot",
    "read_summary",
    "snapshot_row",
    "snapshots",
    "write_export",
    "write_snapshot",
]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class SnapshotBuilder:
    """A snapshot built a product at a time; holds compact rows, never the raw products.

    The rows go to a spooled temporary file (on disk past `SPOOL_BYTES`), the summary after
    them, so the finished document is read back once: a sync holds one page of Shopify's
    answers and, at the end, the document it writes.
    """

    def __init__(self, store: str, *, source: str, currency: str | None = None) -> None:
        self.store = check_store(store)
        self.source = source
        self.currency = currency
        self.counts: Counter[str] = Counter()
        self.skipped: list[dict[str, Any]] = []
        self.skipped_count = 0
        # Closed by body(); a builder dropped before that is closed by the garbage collector.
        self._rows: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self._rows.write(b'{"products":[')
        self._first = True
        self._seen: set[str] = set()

    @property
    def total(self) -> int:
        """Rows so far (skipped products not counted)."""
        return len(self._seen)

    def add(self, raw: Any) -> bool:
        """Add one raw product; False when it was skipped (its reason is kept)."""
        try:
            row = row_of(raw, self.currency)
        except Skipped as skipped:
            self.skip(skipped.entry())
            return False
        return self.add_row(row)

    def add_row(self, row: dict[str, Any]) -> bool:
        if row["id"] in self._seen:
            self.skip({"id": row["id"], "title": row.get("title"), "reason": DUPLICATE})
            return False
        self._seen.add(row["id"])
        self._rows.write(_dumps(row) if self._first else b"," + _dumps(row))
        self._first = False
        self.counts[row.get("visibility") or (LIVE if is_live(row) else "draft")] += 1
        return True

    def skip(self, entry: dict[str, Any]) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_SKIPPED_LISTED:
            self.skipped.append(entry)

    def summary(self) -> dict[str, Any]:
        counts = {name: self.counts.get(name, 0) for name in (LIVE, *HIDDEN)}
        at = now_iso()
        return {
            "format": FORMAT,
            "store": self.store,
            "source": self.source,
            "currency": self.currency,
            "generated_at": at,
            "updated_at": at,
            "counts": {**counts, "skipped": self.skipped_count, "total": self.total},
            "skipped": self.skipped,
        }

    def body(self, *, allow_empty: bool = False) -> tuple[bytes, dict[str, Any]]:
        """The snapshot document and its summary; an upload with no valid product is refused."""
        if not self._seen and not allow_empty:
            reasons = "; ".join(f"{s['id']}: {s['reason']}" for s in self.skipped[:3])
            raise InvalidInput(
                "the export has no valid products to snapshot" + (f" ({reasons})" if reasons else "")
            )
        summary = self.summary()
        # Readers look keys up by name: the summary may follow the rows it counts.
        self._rows.write(b"]," + _dumps(summary)[1:])
        self._rows.seek(0)
        body = self._rows.read()
        self._rows.close()
        return body, summary


def publish_snapshot(
    objects: ObjectStore,
    store: str,
    body: bytes,
    summary: dict[str, Any],
    *,
    if_match: str | None = None,
    if_none_match: bool = False,
) -> str:
    """Write the snapshot, then its summary; returns the snapshot's ETag (conditions as `put`)."""
    key = catalog_snapshot_key(store)
    etag = objects.put(
        key,
        body,
        content_type="application/json",
        metadata={"pipeline": "catalog_snapshot"},
        if_match=if_match,
        if_none_match=if_none_match,
    )
    put_json(objects, catalog_summary_key(store), summary, metadata={"pipeline": "catalog_snapshot"})
    snapshots.invalidate(store)
    counts = summary["counts"]
    log.info(
        "catalog_snapshot_written",
        store=store,
        key=key,
        source=summary["source"],
        live=counts[LIVE],
        hidden=sum(counts[h] for h in HIDDEN),
        skipped=counts["skipped"],
        bytes=len(body),
    )
    return etag


def build_snapshot(
    store: str, export: Any, *, source: str = "upload", currency: str | None = None
) -> dict[str, Any]:
    """A snapshot document from a parsed export (products that fail validation are skipped)."""
    builder = SnapshotBuilder(store, source=source, currency=currency)
    for raw in load_products(export):
        builder.add(raw)
    body, _ = builder.body()
    doc: dict[str, Any] = json.loads(body)
    return doc


def write_snapshot(
    objects: ObjectStore, store: str, export: Any, *, source: str = "upload", currency: str | None = None
) -> str:
    """Build and publish the store's snapshot from a parsed export; returns its key."""
    builder = SnapshotBuilder(store, source=source, currency=currency)
    for raw in load_products(export):
        builder.add(raw)
    body, summary = builder.body()
    publish_snapshot(objects, store, body, summary)
    return catalog_snapshot_key(store)


def write_export(
    objects: ObjectStore,
    store: str,
    stream: IO[bytes],
    *,
    source: str = "upload",
    currency: str | None = None,
) -> dict[str, Any]:
    """Build and publish the snapshot from an export read a product at a time; returns the summary."""
    builder = SnapshotBuilder(store, source=source, currency=currency)
    for raw in iter_export(stream):
        builder.add(raw)
    body, summary = builder.body()
    publish_snapshot(objects, store, body, summary)
    return summary


def read_summary(objects: ObjectStore, store: str) -> dict[str, Any] | None:
    """The snapshot's summary, or None when the store has no snapshot.

    A snapshot written before summaries existed is summarized from the snapshot itself.
    """
    try:
        summary: dict[str, Any] = objects.get(catalog_summary_key(store)).json()
        return summary
    except NotFound:
        pass
    try:
        doc = objects.get(catalog_snapshot_key(store)).json()
    except NotFound:
        return None
    builder = SnapshotBuilder(store, source=str(doc.get("source") or "upload"), currency=doc.get("currency"))
    for row in doc.get("products") or []:
        if isinstance(row, dict) and row.get("id") is not None:
            builder.add_row({**row, "id": str(row["id"])})
    summary = builder.summary()
    summary["updated_at"] = summary["generated_at"] = doc.get("generated_at")
    return summary


def live_rows(doc: Any) -> list[Any]:
    """The rows shoppers may see (theme builds feature only these)."""
    rows = doc.get("products") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        return []
    return [row for row in rows if isinstance(row, dict) and is_live(row)]


def parse_snapshot(doc: Any) -> Catalog:
    """A snapshot document as a `Catalog` of what shoppers may see (invalid rows skipped)."""
    rows = doc.get("products") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise InvalidInput("catalog snapshot has no 'products' list")
    products = []
    hidden = []
    for row in rows:
        if isinstance(row, dict) and not is_live(row):
            if row.get("id") is not None:
                hidden.append(str(row["id"]))
            continue
        try:
            products.append(Candidate.model_validate(row))
        except ValueError:
            continue
    return Catalog.of(products, hidden=hidden)


# --- edits from product webhooks ------------------------------------------------------------


@dataclass
class Applied:
    """What `apply_changes` did: rows written, rows removed, and products whose copy fields changed."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # older than the row already kept
    copy_changed: list[str] = field(default_factory=list)


def _older(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """True when `new` was updated before `old` (Shopify does not promise webhooks in order)."""
    a, b = shopify_time(new.get("updated_at")), shopify_time(old.get("updated_at"))
    try:
        return a is not None and b is not None and a < b
    except TypeError:  # one with an offset, one without
        return False


def apply_changes(
    objects: ObjectStore, store: str, changes: dict[str, dict[str, Any] | None], *, source: str = "webhooks"
) -> Applied:
    """Fold product changes into the snapshot: id -> new row, a `Skipped` entry, or None (deleted).

    Compare-and-swap on the snapshot's ETag: a concurrent writer makes this read and fold again.
    """
    key = catalog_snapshot_key(store)
    for _ in range(CAS_ATTEMPTS):
        try:
            obj = objects.get(key)
            doc, etag = obj.json(), obj.etag
        except NotFound:
            doc, etag = {"source": source, "products": [], "skipped": []}, None
        done = Applied()
        rows: dict[str, dict[str, Any]] = {}
        for row in doc.get("products") or []:
            if isinstance(row, dict) and row.get("id") is not None:
                rows.setdefault(str(row["id"]), row)
        previous_skips = doc.get("skipped") if isinstance(doc.get("skipped"), list) else []
        skips = [s for s in previous_skips if isinstance(s, dict) and str(s.get("id")) not in changes]
        for pid, new in changes.items():
            old = rows.get(pid)
            if new is None or "reason" in new:
                if old is not None:
                    del rows[pid]
                    done.removed.append(pid)
                if new is not None:
                    skips.append(new)
                continue
            if old is not None and _older(new, old):
                done.stale.append(pid)
                continue
            if old is None or old.get("copy_hash") != new.get("copy_hash"):
                done.copy_changed.append(pid)
            rows[pid] = new
            done.written.append(pid)
        counts = doc.get("counts") if isinstance(doc.get("counts"), dict) else {}
        unlisted = max(0, int(counts.get("skipped", len(previous_skips))) - len(previous_skips))
        kept_source = str(doc.get("source") or source)
        builder = SnapshotBuilder(store, source=kept_source, currency=doc.get("currency"))
        for row in rows.values():
            builder.add_row(row)
        for entry in skips:
            builder.skip(entry)
        builder.skipped_count += unlisted
        body, summary = builder.body(allow_empty=True)
        try:
            publish_snapshot(objects, store, body, summary, if_match=etag, if_none_match=etag is None)
        except (AlreadyExists, NotFound):
            continue  # another writer was first: read its snapshot and fold again
        return done
    raise RetryableError(
        f"the catalog of {store!r} kept changing while product edits were applied", retry_after=1
    )


class SnapshotCache:
    """Parsed snapshots per (object store, store), read once however many requests ask.

    The first request of a store waits for one read (requests arriving meanwhile share it: a
    2,000-product snapshot is ~1 MB to parse, and ten parallel parses stalled a process for
    half a second). After `ttl_s` the cached catalog keeps serving while one background read
    checks the object, which is parsed again only if its ETag changed: parsed candidates keep
    their sanitized prompt rows, the expensive part.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], _Entry] = {}
        self._reads: dict[tuple[int, tuple[int, str]], asyncio.Future[_Entry]] = {}

    async def get(self, object_store: ObjectStore, store: str, ttl_s: float) -> Catalog | None:
        """The store's catalog, or None when it has no snapshot."""
        entry_key = (id(object_store), store)
        entry = self._entries.get(entry_key)
        if entry is None:
            return (await self._read(object_store, store, entry_key, None)).catalog
        refreshing = (id(asyncio.get_running_loop()), entry_key) in self._reads
        if time.monotonic() - entry.read_at >= ttl_s and not refreshing:
            # Stale while revalidating: no request waits for the object store.
            keep(self._read(object_store, store, entry_key, entry), "snapshot_refresh")
        return entry.catalog

    def invalidate(self, store: str) -> None:
        for entry_key in [k for k in self._entries if k[1] == store]:
            del self._entries[entry_key]

    def _read(
        self, object_store: ObjectStore, store: str, entry_key: tuple[int, str], previous: _Entry | None
    ) -> asyncio.Future[_Entry]:
        """One read per key and event loop at a time; callers share it."""
        flight_key = (id(asyncio.get_running_loop()), entry_key)
        flight = self._reads.get(flight_key)
        if flight is None:

            async def read() -> _Entry:
                try:
                    # Off the event loop: an R2 GET and a large JSON parse must not stall requests.
                    entry = await asyncio.to_thread(self._load, object_store, store, previous)
                    self._entries[entry_key] = entry
                    return entry
                finally:
                    self._reads.pop(flight_key, None)

            flight = self._reads[flight_key] = asyncio.ensure_future(read())
        return flight

    @staticmethod
    def _load(object_store: ObjectStore, store: str, previous: _Entry | None) -> _Entry:
        now = time.monotonic()
        try:
            obj = object_store.get(catalog_snapshot_key(store))
        except NotFound:
            return _Entry(now, None, None)
        if previous is not None and obj.etag is not None and previous.etag == obj.etag:
            return _Entry(now, obj.etag, previous.catalog)
        return _Entry(now, obj.etag, parse_snapshot(obj.json()))


@dataclass(frozen=True)
class _Entry:
    read_at: float
    etag: str | None
    catalog: Catalog | None


snapshots = SnapshotCache()
