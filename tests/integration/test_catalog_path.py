"""A new store's path over HTTP with the Procfile's worker processes: add, sync, personalize, build."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.api import OPS_TOKEN, RunningApi, serve_app
from tests.fixtures.shopify import ShopifyStandIn, sample_catalog

STORE = "trailhead-supply"
SHOP = "trailhead-supply.myshopify.com"


@pytest.fixture
def path_api(lane: Any, shopify_server: ShopifyStandIn) -> Iterator[tuple[RunningApi, Any]]:
    """The API over the lanes' Redis and store; the Procfile's batch and interactive workers do the work."""
    from adapters.settings import load_settings
    from entrypoints import compose
    from entrypoints.api import create_app

    settings = load_settings(
        redis_url=lane.redis.url, local_store_dir=lane.store_dir, ops_api_token=OPS_TOKEN
    )
    ctx = compose.api_context(settings, store=lane.objects(), broker=lane.broker)
    with serve_app(create_app(ctx)) as running:
        yield running, ctx


def poll(client: httpx.Client, url: str, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(url).json()
        if body.get("status") in ("done", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_a_new_store_goes_from_stores_add_to_sync_to_personalization_and_a_theme(
    path_api: tuple[RunningApi, Any], shopify_server: ShopifyStandIn
) -> None:
    running, ctx = path_api
    # Given a Shopify Plus shop (1,000 query-cost points a second: at the Standard plan's 100, the
    # sync alone would wait ~40 s for its bucket; pacing is test_catalog_sync's) of 300 real
    # products, every 5th a draft
    shop = shopify_server.add_shop(
        SHOP, products=sample_catalog(300, seed_id=9_100_000_000_000, drafts_every=5), restore_rate=1000
    )
    drafts = {str(pid) for pid, p in shop.products.items() if p.rest["status"] == "draft"}
    with running.client(OPS_TOKEN) as ops:
        # When ops adds the store and its Admin API token
        added = ops.put(
            f"/v1/stores/{STORE}", json={"shop_domain": SHOP, "currency": "GBP", "name": "Trailhead"}
        )
        assert added.status_code in (200, 201), added.text
        assert ops.put(f"/v1/stores/{STORE}/shopify", json={"admin_token": shop.token}).status_code == 200
        # And its catalog is synced (the Procfile's batch worker calls the Admin API)
        started = ops.post(f"/v1/stores/{STORE}/catalog/sync")
        assert started.status_code == 202, started.text
        synced = poll(ops, started.json()["status_url"])
        assert synced["status"] == "done", synced
        catalog = ops.get(f"/v1/stores/{STORE}/catalog").json()
        assert (catalog["total"], catalog["draft"], catalog["source"]) == (300, 60, "shopify")
        token = ctx.tokens.create(STORE, "storefront").token
    with running.client(token) as storefront:
        # When a shopper's personalization is asked for, with no candidates (the catalog's)
        ask = {
            "pipeline": "personalization",
            "input": {"shopper_id": "hiker-1", "context": {"segment": "new"}},
        }
        personal = poll(
            storefront, storefront.post(f"/v1/stores/{STORE}/generations", json=ask).json()["status_url"]
        )
        assert personal["status"] == "done", personal
        ranked = storefront.get(personal["output_urls"][0]).json()["ranked_product_ids"]
        # Then it ranks synced products, never a draft
        assert ranked and not set(ranked) & drafts and set(ranked) <= {str(p) for p in shop.products}
    with running.client(OPS_TOKEN) as ops:
        # And a theme build (the batch worker) features only products shoppers may see
        brief = {"description": "Trail gear and drinkware for long days outside; calm and practical."}
        asked = ops.post(
            f"/v1/stores/{STORE}/generations", json={"pipeline": "theme_build", "input": {"brief": brief}}
        )
        built = poll(ops, asked.json()["status_url"], timeout_s=180)
        assert built["status"] == "done", built
        theme_key = next(k for k in built["output_keys"] if k.endswith("theme.json"))
        featured = {str(p["id"]) for p in json.loads(ctx.store.get(theme_key).body)["products"]}
        assert featured and not featured & drafts
    assert shopify_server.invalid == []
