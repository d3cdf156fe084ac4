"""Catalog uploads over HTTP, and what reaches shoppers: drafts are kept, never shown or featured."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import sample_products
from tests.fixtures.api import OPS_TOKEN, ApiHarness, serve_app

STORE = "stanley1913"


def admin_export(products: list[dict[str, Any]], drafts: int) -> dict[str, Any]:
    """Real products as an Admin REST export: tags a string, stock instead of `available`, the first `drafts`
    drafts (unpublished, priced 0.00), as the issue's export had them."""
    out = []
    for n, source in enumerate(products):
        product = json.loads(json.dumps(source))
        product["tags"] = ", ".join(product.get("tags") or [])
        product["status"] = "draft" if n < drafts else "active"
        if n < drafts:
            product["published_at"] = None
        for variant in product["variants"]:
            available = variant.pop("available", True)
            variant.update(inventory_management="shopify", inventory_policy="deny")
            variant["inventory_quantity"] = 7 if available else 0
            if n < drafts:
                variant["price"] = "0.00"
        for image in product.get("images") or []:
            image["alt"] = f"{product['title']} photo"
        out.append(product)
    return {"products": out}


def live_products(count: int) -> list[dict[str, Any]]:
    return [p for p in sample_products(STORE) if any(v.get("available") for v in p["variants"])][:count]


@pytest.fixture
def catalog_client(api: ApiHarness) -> Iterator[Any]:
    """A client with the store's token, scopes read, generate, publish and catalog."""
    token = api.ctx.tokens.create(STORE, "merchant tool", ("read", "generate", "publish", "catalog")).token
    with api.running.client(token) as client:
        yield client


def poll(client: Any, url: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(url).json()
        if body.get("status") in ("done", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_an_upload_is_counted_live_draft_and_skipped_with_reasons(
    api: ApiHarness, catalog_client: Any
) -> None:
    # Given the store's real storefront export, plus a product whose title is only markup
    products = sample_products(STORE)
    blank = {**products[0], "id": 1, "title": "<b> </b>&nbsp;"}
    # When it is PUT as the store's catalog
    answer = catalog_client.put(f"/v1/stores/{STORE}/catalog", json={"products": [*products, blank]})
    # Then the catalog counts what shoppers may see apart from what they may not, and says why one was skipped
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    sold_out = sum(1 for p in products if not any(v.get("available") for v in p["variants"]))
    assert summary["live"] == len(products) - sold_out and summary["hidden"]["unavailable"] == sold_out
    assert summary["draft"] == 0 and summary["skipped"] == 1 and summary["currency"] == "GBP"
    (skipped,) = summary["skipped_products"]
    assert skipped["id"] == "1" and "title is blank" in skipped["reason"]
    # And GET answers the same, with its source and age
    got = catalog_client.get(f"/v1/stores/{STORE}/catalog").json()
    assert got == summary and got["source"] == "upload" and got["updated_at"]


def test_an_admin_export_of_mostly_drafts_never_reaches_shoppers(
    api: ApiHarness, catalog_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from domain.keys import catalog_snapshot_key

    # Given an Admin REST export where 8 of 12 products are drafts at 0.00
    export = admin_export(live_products(12), drafts=8)
    drafts = {str(p["id"]) for p in export["products"][:8]}
    live = {str(p["id"]) for p in export["products"][8:]}
    answer = catalog_client.put(f"/v1/stores/{STORE}/catalog", json=export)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["live"], answer.json()["draft"]) == (4, 8)
    # When a shopper's personalization is asked for, candidates from the catalog
    ask = {"pipeline": "personalization", "input": {"shopper_id": "shopper-7", "context": {"segment": "new"}}}
    accepted = catalog_client.post(f"/v1/stores/{STORE}/generations", json=ask)
    assert accepted.status_code == 202, accepted.text
    status = poll(catalog_client, accepted.json()["status_url"])
    assert status["status"] == "done", status
    ranked = catalog_client.get(status["output_urls"][0]).json()["ranked_product_ids"]
    # Then it ranks only live products
    assert ranked and set(ranked) <= live and not set(ranked) & drafts
    # And a personalization whose payload lists drafts (a stale storefront list) drops them too
    stale = [{"id": pid, "title": f"product {pid}", "price": "0.00"} for pid in sorted(drafts)[:4]]
    stale += [{"id": pid, "title": f"product {pid}"} for pid in sorted(live)]
    ask["input"]["context"] = {"segment": "new", "candidates": stale}
    accepted = catalog_client.post(f"/v1/stores/{STORE}/generations", json=ask)
    status = poll(catalog_client, accepted.json()["status_url"])
    ranked = catalog_client.get(status["output_urls"][0]).json()["ranked_product_ids"]
    assert ranked and not set(ranked) & drafts
    # When a theme is built from the catalog
    brief = {"description": "Rugged drinkware for the outdoors; warm and plain-spoken."}
    build = catalog_client.post(
        f"/v1/stores/{STORE}/generations", json={"pipeline": "theme_build", "input": {"brief": brief}}
    )
    assert build.status_code == 202, build.text
    built = poll(catalog_client, build.json()["status_url"], timeout_s=120)
    assert built["status"] == "done", built
    theme_key = next(k for k in built["output_keys"] if k.endswith("theme.json"))
    theme = json.loads(api.ctx.store.get(theme_key).body)
    featured = {str(p["id"]) for p in theme["products"]}
    # Then it features only live products, and no 0.00 price
    assert featured and featured <= live, (featured, live)
    assert all(p["price"] != "0.00" for p in theme["products"])
    # And the drafts are still in the catalog, marked as such
    rows = json.loads(api.ctx.store.get(catalog_snapshot_key(STORE)).body)["products"]
    assert {r["id"] for r in rows if r["visibility"] == "draft"} == drafts


def test_a_token_without_the_catalog_scope_cannot_replace_the_catalog(api: ApiHarness) -> None:
    with api.running.client(api.token_for(STORE)) as storefront:  # read, generate
        refused = storefront.put(f"/v1/stores/{STORE}/catalog", json={"products": sample_products(STORE)[:2]})
    assert refused.status_code == 403 and "catalog" in refused.json()["error"]["message"]


def test_a_bad_export_is_refused_and_the_catalog_kept(api: ApiHarness, catalog_client: Any) -> None:
    url = f"/v1/stores/{STORE}/catalog"
    assert catalog_client.put(url, json={"products": sample_products(STORE)[:5]}).status_code == 200
    for body in (b'{"products": [{"id": 1, "title": "x"}', b'{"products": [{"title": "no id"}]}'):
        refused = catalog_client.put(url, content=body, headers={"Content-Type": "application/json"})
        assert refused.status_code == 422, refused.text
    assert catalog_client.get(url).json()["total"] == 5


def test_an_upload_over_the_cap_is_413_by_header_and_by_stream(api: ApiHarness) -> None:
    from adapters.settings import load_settings
    from entrypoints import compose
    from entrypoints.api import create_app

    # Given an API taking catalog exports of at most 4 KB
    settings = load_settings(ops_api_token=OPS_TOKEN, catalog_export_max_bytes=4096)
    ctx = compose.api_context(settings, store=api.ctx.store)
    export = json.dumps({"products": sample_products(STORE)[:3]}).encode()
    assert len(export) > 4096
    with serve_app(create_app(ctx)) as running, running.client(OPS_TOKEN) as ops:
        url = f"/v1/stores/{STORE}/catalog"
        # When an export larger than that is PUT with its length, and streamed without one
        declared = ops.put(url, content=export)
        streamed = ops.put(url, content=(export[i : i + 1024] for i in range(0, len(export), 1024)))
        # Then both are 413 naming the setting, and a small one still goes through
        small = ops.put(url, json={"products": [{"id": 1, "title": "Mug", "variants": [{"price": "5.00"}]}]})
    for refused in (declared, streamed):
        assert refused.status_code == 413 and "CATALOG_EXPORT_MAX_BYTES" in refused.json()["error"]["message"]
    assert small.status_code == 200, small.text
