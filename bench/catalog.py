"""Catalogs of any size built from the sample stores' real Shopify exports, one product at a time."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "shopify"
SAMPLE_STORES = ("stanley1913", "electricshop", "kiids-kingdom")


@functools.cache
def sample(store: str) -> tuple[dict[str, Any], ...]:
    """A sample store's products as Shopify served them (60 per store, ~3 MB in all)."""
    data = json.loads((DATA_DIR / f"{store}.products.json").read_text(encoding="utf-8"))
    return tuple(data["products"])


def samples() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sample product once, with its store."""
    for store in SAMPLE_STORES:
        for product in sample(store):
            yield store, product


def variant(product: dict[str, Any], n: int) -> dict[str, Any]:
    """Product `n` of a synthetic catalog: the sample's content under a new id and title.

    A new title changes the prompt, so neither the result cache nor the gateway cache can
    answer it: every variant is a fresh generation.
    """
    return {**product, "id": f"{product['id']}x{n}", "title": f"{product['title']} · edition {n}"}


def catalog(count: int, start: int = 0) -> Iterator[tuple[str, dict[str, Any]]]:
    """Products `start` .. `start + count - 1` across the sample stores, generated one at a time."""
    base = list(samples())
    for n in range(start, start + count):
        store, product = base[n % len(base)]
        yield store, variant(product, n)
