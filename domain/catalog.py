"""Which products shoppers may see, and which fields a product's copy is made from.

Only a live product reaches shoppers: it becomes a personalization candidate or is featured
in a theme. A draft, an archived product, one not published to the online store and one
with no variant for sale stay in the catalog (their copy may be written, marked as a draft)
but are never shown.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

LIVE = "live"
DRAFT = "draft"
ARCHIVED = "archived"
UNPUBLISHED = "unpublished"
UNAVAILABLE = "unavailable"
HIDDEN = (DRAFT, ARCHIVED, UNPUBLISHED, UNAVAILABLE)

# What the product copy agent reads: a change to any of these makes the copy stale. (Prices,
# stock and status change often and the copy does not mention them.)
COPY_FIELDS = ("title", "body_html", "vendor", "product_type", "tags", "options", "images")


def visibility(status: str | None, published: bool | None, available: bool | None) -> str:
    """`live`, or why shoppers may not see the product.

    `status` is Shopify's (`active`, `draft`, `archived`; absent in storefront exports, whose
    products are all active); `published` is whether it is on the online store (None: unknown,
    as in reduced rows); `available` whether any variant can be bought (None: unknown).
    """
    state = (status or "active").strip().lower()
    if state == DRAFT:
        return DRAFT
    if state == ARCHIVED:
        return ARCHIVED
    if state != "active" or published is False:
        return UNPUBLISHED  # includes statuses newer than this code (e.g. `unlisted`)
    if available is False:
        return UNAVAILABLE
    return LIVE


def is_live(row: Mapping[str, Any]) -> bool:
    """Whether a snapshot row (or any Shopify-shaped product) may be shown to shoppers."""
    seen = row.get("visibility")
    if isinstance(seen, str):
        return seen == LIVE
    # Rows written before visibility was recorded, and hand-made ones, are judged by what they carry.
    published = None if "published_at" not in row else row.get("published_at") is not None
    available = row.get("available") if isinstance(row.get("available"), bool) else None
    return visibility(row.get("status"), published, available) == LIVE


def copy_fingerprint(fields: Mapping[str, Any]) -> str:
    """A digest of the fields the copy is made from (`COPY_FIELDS`), equal when none changed."""
    canonical = json.dumps(
        {name: fields.get(name) for name in COPY_FIELDS}, sort_keys=True, ensure_ascii=False
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def shopify_time(value: Any) -> datetime | None:
    """Shopify's ISO 8601 `updated_at` (REST says -05:00 where GraphQL says Z) as a datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
