"""Catalog sync against the Shopify Admin API stand-in over real HTTP: paging, throttling, streaming."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.fixtures.shopify import ShopifyStandIn, sample_catalog
from tests.fixtures.stores import add_store
from tests.helpers import wait_job


def connect(svc: Any, shopify: ShopifyStandIn, store: str, count: int, **shop: Any) -> Any:
    """A stand-in shop with `count` real products (every 5th a draft), and `store` added with its token."""
    from adapters.secretbox import open_box
    from adapters.stores import StoreRegistry

    made = shopify.add_shop(f"{store}.myshopify.com", products=sample_catalog(count, drafts_every=5), **shop)
    add_store(svc.redis, store, shop_domain=made.domain, currency="GBP")
    StoreRegistry(svc.redis).set_admin_token(store, open_box(svc.settings).seal(made.token))
    return made


def sync(svc: Any, store: str, timeout_s: float = 120) -> dict[str, Any]:
    from entrypoints import compose
    from pipelines.catalog_sync import submit_sync

    job_id, new = submit_sync(compose.process_broker(), svc.status, svc.redis, store)
    assert new
    return wait_job(svc.status, job_id, timeout_s=timeout_s)


def test_a_2000_product_sync_paces_itself_and_waits_out_throttling(
    worker: Any, services: Any, shopify: ShopifyStandIn
) -> None:
    from pipelines.catalog_snapshot import read_summary

    # Given a shop of 2,000 products whose bucket another app drains every 7th query
    connect(services, shopify, "throttled-shop", 2000, maximum=1000, restore_rate=10_000)
    shopify.compete_every = 7
    # When the store's catalog is synced
    began = time.monotonic()
    info = sync(services, "throttled-shop")
    seconds = time.monotonic() - began
    # Then the job is done and the snapshot holds every product, drafts counted apart
    assert info["status"] == "done", info
    summary = read_summary(services.store, "throttled-shop")
    assert summary is not None
    counts = summary["counts"]
    assert counts["total"] == 2000 and counts["draft"] == 400, counts
    assert counts["live"] + counts["unavailable"] == 1600
    # And every THROTTLED answer was one the other app caused: the client never overdrew the bucket
    assert shopify.drains > 0
    assert shopify.throttled() == shopify.drains == summary["sync"]["throttled"]
    # And every query Shopify received was valid for the pinned version
    assert shopify.invalid == []
    assert {s.version for s in shopify.served} == {services.settings.shopify_api_version}
    print(f"\nsync: 2000 products in {seconds:.1f}s ({2000 / seconds:.0f}/s), {summary['sync']}")


def test_rows_carry_status_prices_in_the_store_currency_availability_and_image_alt(
    worker: Any, services: Any, shopify: ShopifyStandIn
) -> None:
    from domain.keys import catalog_snapshot_key
    from domain.sanitize import plain_text

    # Given a shop whose products include drafts and ones with more variants than a page carries
    made = connect(services, shopify, "rows-shop", 60, restore_rate=1000)  # Plus: not a pacing test
    # When it is synced
    assert sync(services, "rows-shop")["status"] == "done"
    doc = services.store.get(catalog_snapshot_key("rows-shop")).json()
    rows = {r["id"]: r for r in doc["products"]}
    # Then each row says where the product stands, and prices, currency, stock and alt text
    for pid, product in made.products.items():
        row = rows[str(pid)]
        assert row["status"] == product.rest["status"]
        assert ("published_at" in row) and (row["published_at"] is None) == (
            product.rest["status"] == "draft"
        )
        assert len(row["variants"]) == len(product.rest["variants"])  # all of them, not the first page's 25
        for variant, source in zip(row["variants"], product.rest["variants"], strict=True):
            assert variant["price"] == source["price"] and variant["currency"] == "GBP"
            assert variant["available"] == source["available"]
        assert [i["alt"] for i in row["images"]] == [plain_text(i["alt"]) for i in product.rest["images"][:3]]
        assert row["visibility"] in ("draft", "live", "unavailable")
    assert max(len(p.rest["variants"]) for p in made.products.values()) > 25


def test_a_query_over_the_cost_limit_is_sent_again_with_a_smaller_page(
    worker: Any, services: Any, shopify: ShopifyStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.catalog_snapshot import read_summary

    # Given a page size whose query costs more than Shopify's 1,000-point limit
    monkeypatch.setattr(services.settings, "shopify_page_size", 100)
    connect(services, shopify, "costly-shop", 120, restore_rate=1000)  # Plus: not a pacing test
    # When the catalog is synced
    assert sync(services, "costly-shop")["status"] == "done"
    # Then Shopify refused the first query, and smaller pages brought every product
    assert [s.outcome for s in shopify.served].count("too_costly") >= 1
    summary = read_summary(services.store, "costly-shop")
    assert summary is not None and summary["counts"]["total"] == 120


def test_a_refused_token_fails_the_sync_once_naming_the_fix(
    worker: Any, services: Any, shopify: ShopifyStandIn
) -> None:
    from adapters.secretbox import open_box
    from adapters.stores import StoreRegistry

    # Given a store whose stored Admin API token Shopify does not know
    connect(services, shopify, "revoked-shop", 5)
    StoreRegistry(services.redis).set_admin_token(
        "revoked-shop", open_box(services.settings).seal("shpat_revoked")
    )
    # When it is synced
    info = sync(services, "revoked-shop")
    # Then the job failed at once (no retries) with Shopify's 401, naming the command that fixes it
    assert info["status"] == "failed" and int(info["attempts"]) == 1, info
    assert "ShopifyAuthError" in info["error"] and "stores shopify-token" in info["error"]
    assert "shpat_revoked" not in info["error"]
    assert [s.outcome for s in shopify.served] == ["unauthorized"]


def test_a_second_sync_request_gets_the_running_job(
    worker: Any, services: Any, shopify: ShopifyStandIn
) -> None:
    from entrypoints import compose
    from pipelines.catalog_state import CatalogState
    from pipelines.catalog_sync import submit_sync

    # Given a store whose catalog a sync (job "sync-1") is writing
    connect(services, shopify, "busy-shop", 1)
    assert CatalogState(services.redis).lock_sync("busy-shop", "sync-1") is None
    broker = compose.process_broker()
    # When another sync is asked for
    job_id, new = submit_sync(broker, services.status, services.redis, "busy-shop")
    # Then it is that one, and nothing was queued
    assert (job_id, new) == ("sync-1", False)
    assert services.status.get("sync-1") is None
    # And once that sync let go, a request queues a new one
    CatalogState(services.redis).unlock_sync("busy-shop", "sync-1")
    job_id, new = submit_sync(broker, services.status, services.redis, "busy-shop")
    assert new and job_id != "sync-1"
    assert services.status.get(job_id)["pipeline"] == "catalog_sync"
    wait_job(services.status, job_id)


@pytest.mark.timeout(300)
def test_10000_products_stream_with_bounded_memory_and_progress(
    services: Any, shopify: ShopifyStandIn
) -> None:
    import psutil

    from pipelines.catalog_sync import sync_catalog

    # Given a shop of 10,000 products, and a sync watched page by page
    connect(services, shopify, "big-shop", 10_000, maximum=2000, restore_rate=100_000)
    process = psutil.Process()
    base = peak = process.memory_info().rss
    progress: list[dict[str, Any]] = []

    def watch(fields: dict[str, Any]) -> None:
        nonlocal peak
        progress.append(fields)
        peak = max(peak, process.memory_info().rss)

    # When the catalog is synced
    began = time.monotonic()
    synced = asyncio.run(sync_catalog(services, "big-shop", job_id="big-sync", progress=watch))
    seconds = time.monotonic() - began
    peak = max(peak, process.memory_info().rss)
    # Then every product arrived, and progress was reported after every page
    assert synced.summary["counts"]["total"] == 10_000
    pages = synced.summary["sync"]["pages"]
    assert pages == 400 and len(progress) == pages
    assert [p["synced"] for p in progress] == [25 * n for n in range(1, pages + 1)]
    assert progress[-1]["progress"] == "10000 products synced (400 pages)"
    # And the process grew by little more than the snapshot it wrote: Shopify's answers were not kept
    # (as JSON they are several times the snapshot, and several times that again as Python objects)
    size = len(services.store.get("stores/big-shop/catalog.json").body)
    grown = peak - base
    print(
        f"\n10,000 products: {seconds:.1f}s, process grew {grown / 1e6:.0f} MB, snapshot {size / 1e6:.1f} MB"
    )
    assert grown < size + 100e6, (grown, size)
