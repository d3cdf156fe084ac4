"""The store's catalog snapshot (`stores/{store}/catalog.json`): the products personalization ranks.

`build_snapshot` makes one from a Shopify export (`{"products": [...]}`, a list, or one
product); `write_snapshot` publishes it. Workers read it through `SnapshotCache`, which
trusts what it read for `catalog_snapshot_ttl_s`, so the interactive lane does not wait on
the object store for every request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.errors import InvalidInput, NotFound
from adapters.logs import get_logger
from adapters.store import ObjectStore, put_json
from agents.shopify import ShopifyProduct, load_products, parse_product
from domain.keys import catalog_snapshot_key, check_store
from domain.sanitize import html_to_text, plain_text
from pipelines.background import keep
from pipelines.cohorts import Candidate, Catalog
from pipelines.publish import now_iso

log = get_logger("pipelines.catalog_snapshot")
SUMMARY_CHARS = 300


def _lowest_price(product: ShopifyProduct) -> str | None:
    prices: list[tuple[Decimal, str]] = []
    for variant in product.variants:
        try:
            if variant.price is not None:
                prices.append((Decimal(variant.price), variant.price))
        except InvalidOperation:
            continue
    return min(prices)[1] if prices else None


def snapshot_row(product: ShopifyProduct) -> dict[str, Any]:
    """One product as a snapshot row, still Shopify-shaped so any reader of an export reads it.

    Personalization reads id, title, product_type, price and tags; theme builds also read
    vendor, handle, the short plain-text body and the first image.
    """
    row: dict[str, Any] = {
        "id": product.id,
        "title": plain_text(product.title, 300),
        "handle": plain_text(product.handle or "", 255),
        "vendor": plain_text(product.vendor or "", 100),
        "product_type": plain_text(product.product_type or "", 100),
        "price": _lowest_price(product),
        "tags": [t for t in (plain_text(x, 60) for x in product.tags[:20]) if t],
        "body_html": plain_text(html_to_text(product.body_html or ""), SUMMARY_CHARS),
    }
    if product.images:
        image = product.images[0]
        row["images"] = [{"id": image.id, "src": image.src, "alt": plain_text(image.alt or "", 125)}]
    return row


def build_snapshot(store: str, export: Any) -> dict[str, Any]:
    """A snapshot from a Shopify export; products that fail validation are skipped and counted."""
    check_store(store)
    rows: list[dict[str, Any]] = []
    skipped = 0
    for raw in load_products(export):
        try:
            rows.append(snapshot_row(parse_product(raw)))
        except InvalidInput:
            skipped += 1
    if not rows:
        raise InvalidInput("the export has no valid products to snapshot")
    return {"store": store, "generated_at": now_iso(), "products": rows, "skipped": skipped}


def write_snapshot(object_store: ObjectStore, store: str, export: Any) -> str:
    """Build and publish the store's snapshot; returns its key."""
    snapshot = build_snapshot(store, export)
    key = catalog_snapshot_key(store)
    put_json(object_store, key, snapshot, metadata={"pipeline": "catalog_snapshot"})
    snapshots.invalidate(store)
    log.info("catalog_snapshot_written", store=store, key=key, products=len(snapshot["products"]))
    return key


def parse_snapshot(doc: Any) -> Catalog:
    """A snapshot document as a `Catalog` (rows that fail validation are skipped)."""
    rows = doc.get("products") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise InvalidInput("catalog snapshot has no 'products' list")
    products = []
    for row in rows:
        try:
            products.append(Candidate.model_validate(row))
        except ValueError:
            continue
    return Catalog.of(products)


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
