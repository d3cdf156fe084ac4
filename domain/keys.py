"""Validation of store slugs and ids, and the object keys built from them.

Nothing user-supplied becomes part of a key before it passes these checks.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.errors import InvalidInput

STORE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Shopper and product ids: what Shopify and the storefront use, nothing that can
# traverse, hide or break a key (no '/', '.', whitespace, NUL).
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
BUILD_RE = re.compile(r"^[a-z0-9][a-z0-9-]{5,63}$")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_store(store: Any) -> str:
    """Return `store` if it is a valid slug, else raise `InvalidInput` saying why."""
    if not isinstance(store, str) or not STORE_RE.fullmatch(store):
        raise InvalidInput(
            f"store slug {_describe(store)} is invalid: it must match {STORE_RE.pattern} "
            "(lower-case letters, digits and '-', at most 63 characters)"
        )
    return store


def check_id(value: Any, what: str = "id") -> str:
    """Normalize a product/shopper id (int or str) and validate it for use in keys."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} {_describe(value)} is invalid: expected a number or a string")
    if isinstance(value, int):
        if value < 0:
            raise InvalidInput(f"{what} {_describe(value)} is invalid: must not be negative")
        value = str(value)
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise InvalidInput(
            f"{what} {_describe(value)} is invalid: it must match {ID_RE.pattern} "
            "(letters, digits, '_' and '-', at most 128 characters)"
        )
    return value


def check_build_id(value: Any) -> str:
    if not isinstance(value, str) or not BUILD_RE.fullmatch(value):
        raise InvalidInput(f"build id {_describe(value)} is invalid: it must match {BUILD_RE.pattern}")
    return value


def product_copy_key(store: str, product_id: str) -> str:
    return f"stores/{check_store(store)}/products/{check_id(product_id, 'product id')}/copy.json"


def personalization_key(store: str, shopper_id: str) -> str:
    return f"stores/{check_store(store)}/shoppers/{check_id(shopper_id, 'shopper id')}/personalization.json"


def theme_build_prefix(store: str, build_id: str) -> str:
    return f"themes/{check_store(store)}/builds/{check_build_id(build_id)}/"


def theme_pointer_key(store: str) -> str:
    return f"themes/{check_store(store)}/current.json"


def catalog_snapshot_key(store: str) -> str:
    return f"stores/{check_store(store)}/catalog.json"


def catalog_summary_key(store: str) -> str:
    """Counts, source and skipped products of the snapshot, small enough to read on every request."""
    return f"stores/{check_store(store)}/catalog-summary.json"


def store_prefixes(store: str) -> tuple[str, str]:
    """The two prefixes a store's outputs may live under."""
    check_store(store)
    return f"stores/{store}/", f"themes/{store}/"
