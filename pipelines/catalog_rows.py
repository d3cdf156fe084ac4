"""One Shopify product as a catalog snapshot row, or the reason it was skipped.

Rows stay Shopify-shaped, so any reader of an export reads them: personalization reads id,
title, product_type, price and tags; theme builds also vendor, handle, the short plain-text
body and the first image. A row also says where the product stands (`status`,
`published_at`, `available`, and the `visibility` derived from them, see domain/catalog.py),
each variant's price in the store's currency and whether it is for sale, the images with
their alt text, and `copy_hash`, the digest of the fields its copy is made from.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.errors import InvalidInput
from agents.shopify import ShopifyProduct, parse_product
from domain.catalog import copy_fingerprint, visibility
from domain.sanitize import html_to_text, plain_text

SUMMARY_CHARS = 300
MAX_IMAGES = 10
MAX_VARIANTS = 100
BLANK_TITLE = "the title is blank once markup and whitespace are removed"


class Skipped(InvalidInput):
    """A product that cannot be a row; `reason` says why, for the catalog's report."""

    def __init__(self, reason: str, product_id: str | None = None, title: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.product_id = product_id
        self.title = title

    def entry(self) -> dict[str, Any]:
        return {"id": self.product_id, "title": self.title, "reason": self.reason}


def _price_key(price: str | None) -> Decimal | None:
    try:
        return Decimal(price) if price is not None else None
    except InvalidOperation:
        return None


def _lowest_price(product: ShopifyProduct) -> str | None:
    """The lowest price a shopper can pay: among variants for sale when any are, else among all."""
    priced = [(key, v) for v in product.variants if (key := _price_key(v.price)) is not None]
    for_sale = [(key, v) for key, v in priced if v.for_sale() is not False]
    pool = for_sale or priced
    return min(pool, key=lambda item: item[0])[1].price if pool else None


def copy_hash(product: ShopifyProduct) -> str:
    """The digest of what the copy is made from (domain.catalog.COPY_FIELDS)."""
    return copy_fingerprint(
        {
            "title": product.title,
            "body_html": product.body_html or "",
            "vendor": product.vendor or "",
            "product_type": product.product_type or "",
            "tags": list(product.tags),
            "options": [{"name": o.name, "values": list(o.values)} for o in product.options],
            "images": [{"src": i.src, "alt": i.alt or ""} for i in product.images],
        }
    )


def snapshot_row(product: ShopifyProduct, currency: str | None = None) -> dict[str, Any]:
    """One product as a snapshot row; `Skipped` when its title is blank once cleaned."""
    title = plain_text(product.title, 300)
    if not title:
        raise Skipped(BLANK_TITLE, product.id, None)
    available = product.for_sale()
    published = product.published
    row: dict[str, Any] = {
        "id": product.id,
        "title": title,
        "handle": plain_text(product.handle or "", 255),
        "vendor": plain_text(product.vendor or "", 100),
        "product_type": plain_text(product.product_type or "", 100),
        "price": _lowest_price(product),
        "currency": currency,
        "tags": [t for t in (plain_text(x, 60) for x in product.tags[:20]) if t],
        "body_html": plain_text(html_to_text(product.body_html or ""), SUMMARY_CHARS),
        "status": (product.status or "active").lower(),
        "available": available,
        "visibility": visibility(product.status, published, available),
        "variants": [
            {
                "id": v.id,
                "title": plain_text(v.title, 100),
                "price": v.price,
                "compare_at_price": v.compare_at_price,
                "currency": currency,
                "available": v.for_sale(),
            }
            for v in product.variants[:MAX_VARIANTS]
        ],
        "images": [
            {"id": i.id, "src": i.src, "alt": plain_text(i.alt or "", 125)}
            for i in product.images[:MAX_IMAGES]
        ],
        "copy_hash": copy_hash(product),
        "updated_at": product.updated_at,
    }
    if published is not None:
        row["published_at"] = product.published_at
    return row


def row_of(raw: Any, currency: str | None = None) -> dict[str, Any]:
    """A raw product (an export's, Shopify's) as a row; `Skipped` saying why it cannot be one."""
    try:
        return snapshot_row(parse_product(raw), currency)
    except Skipped:
        raise
    except InvalidInput as exc:
        pid = raw.get("id") if isinstance(raw, dict) else None
        title = raw.get("title") if isinstance(raw, dict) else None
        raise Skipped(
            str(exc),
            str(pid)[:128] if isinstance(pid, int | str) else None,
            plain_text(title, 120) if isinstance(title, str) else None,
        ) from None
