"""The store's catalog snapshot (`stores/{store}/catalog.json`): the products personalization ranks.

`build_snapshot` makes one from a Shopify export (`{"products": [...]}`, a list, or one
product); `write_snapshot` publishes it. Workers read it through `SnapshotCache`, which
trusts what it read for `catalog_snapshot_ttl_s`, so the interactive lane does not wait on
the object store for every request.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from agents.sanitize import html_to_text, plain_text
from agents.shopify import ShopifyProduct, load_products, parse_product
from pipelines.cohorts import Candidate, Catalog
from pipelines.publish import now_iso
from wandstore_agents.errors import InvalidInput, NotFound
from wandstore_agents.keys import catalog_snapshot_key, check_store
from wandstore_agents.logs import get_logger
from wandstore_agents.store import ObjectStore, put_json

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
    """Parsed snapshots per (object store, store), trusted for `ttl_s` (missing ones too).

    After `ttl_s` the object is read again, but parsed again only if its ETag changed: parsed
    candidates keep their sanitized prompt rows, which are the expensive part.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[float, str | None, Catalog | None]] = {}

    async def get(self, object_store: ObjectStore, store: str, ttl_s: float) -> Catalog | None:
        """The store's catalog, or None when it has no snapshot."""
        entry_key = (id(object_store), store)
        entry = self._entries.get(entry_key)
        now = time.monotonic()
        if entry is not None and now - entry[0] < ttl_s:
            return entry[2]
        # Off the event loop: an R2 GET and a large JSON parse must not stall other requests.
        etag, catalog = await asyncio.to_thread(self._load, object_store, store, entry)
        self._entries[entry_key] = (now, etag, catalog)
        return catalog

    def invalidate(self, store: str) -> None:
        for entry_key in [k for k in self._entries if k[1] == store]:
            del self._entries[entry_key]

    @staticmethod
    def _load(
        object_store: ObjectStore, store: str, previous: tuple[float, str | None, Catalog | None] | None
    ) -> tuple[str | None, Catalog | None]:
        try:
            obj = object_store.get(catalog_snapshot_key(store))
        except NotFound:
            return None, None
        if previous is not None and obj.etag is not None and previous[1] == obj.etag:
            return obj.etag, previous[2]
        return obj.etag, parse_snapshot(obj.json())


snapshots = SnapshotCache()
