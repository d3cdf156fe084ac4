"""Shopify's product webhooks over real HTTP: verified before parsing, deduplicated, queued, debounced."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.conftest import SHOPIFY_WEBHOOK_SECRET, sample_products
from tests.fixtures.api import ApiHarness
from tests.fixtures.shopify import send_webhook, sign
from tests.helpers import join_queue

STORE = "stanley1913"
SHOP = "stanley1913.myshopify.com"


def admin(product: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A storefront product as a `products/update` payload carries it (Admin REST shape)."""
    payload = json.loads(json.dumps(product))
    payload.update({"status": "active", "tags": ", ".join(payload.get("tags") or []), **changes})
    payload.setdefault("updated_at", time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()))
    return payload


class Shopify:
    """Deliveries to the API, as Shopify makes them."""

    def __init__(self, api: ApiHarness) -> None:
        self.url = api.url + "/v1/shopify/webhooks"
        self.clock = 0

    def send(self, topic: str, payload: dict[str, Any], **kw: Any) -> Any:
        kw.setdefault("secret", SHOPIFY_WEBHOOK_SECRET)
        return send_webhook(self.url, topic, kw.pop("shop", SHOP), payload, **kw)

    def update(self, product: dict[str, Any], **changes: Any) -> Any:
        # Each edit a second later than the last, as Shopify stamps them.
        self.clock += 1
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + self.clock))
        return self.send("products/update", admin(product, updated_at=stamp, **changes))


def jobs(api: ApiHarness, pipeline: str, product_id: str | None = None) -> list[dict[str, Any]]:
    found = []
    for key in api.ctx.redis.scan_iter(match="wandstore:job:*", count=1000):
        info = api.ctx.status.get(key.decode().rsplit(":", 1)[-1])
        if not info or info.get("pipeline") != pipeline or info.get("store") != STORE:
            continue
        if product_id is None or info.get("product_id") == product_id:
            found.append(info)
    return found


def rows(api: ApiHarness) -> dict[str, dict[str, Any]]:
    doc = json.loads(api.ctx.store.get(f"stores/{STORE}/catalog.json").body)
    return {r["id"]: r for r in doc["products"]}


def settle(api: ApiHarness) -> None:
    """Until every queued and delayed job (folds, regenerations, their copy) has run."""
    join_queue(api.ctx.redis, "batch", timeout_s=30)


@pytest.fixture
def shopify(api: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> Shopify:
    """The store's catalog uploaded, folds 50 ms apart and regenerations after 0.5 s of quiet."""
    from entrypoints import compose
    from pipelines.catalog_snapshot import write_snapshot

    settings = compose.services().settings
    monkeypatch.setattr(settings, "catalog_apply_delay_ms", 50)
    monkeypatch.setattr(settings, "copy_regen_debounce_s", 0.5)
    for key in api.ctx.redis.scan_iter(match="wandstore:job:*", count=1000):
        api.ctx.redis.delete(key)
    write_snapshot(api.ctx.store, STORE, {"products": sample_products(STORE)}, currency="GBP")
    return Shopify(api)


def test_forged_and_tampered_webhooks_are_401_and_queue_nothing(api: ApiHarness, shopify: Shopify) -> None:
    product = admin(sample_products(STORE)[0], title="Forged title")
    raw = json.dumps(product).encode()
    attempts = [
        shopify.send("products/update", product, signature=""),  # no signature
        shopify.send("products/update", product, secret="someone-elses-secret"),
        shopify.send(
            "products/update", product, body=raw + b" ", signature=sign(SHOPIFY_WEBHOOK_SECRET, raw)
        ),
        shopify.send("products/update", product, body=b"{not json", signature="AAAA" + "=" * 40),
    ]
    assert [a.status_code for a in attempts] == [401] * 4, [a.text for a in attempts]
    settle(api)
    assert jobs(api, "shopify_product_event") == []
    assert rows(api)[str(product["id"])]["title"] != "Forged title"


def test_a_replayed_delivery_is_queued_once(api: ApiHarness, shopify: Shopify) -> None:
    product = admin(sample_products(STORE)[1], title="Replayed once")
    delivery = str(uuid.uuid4())
    first = shopify.send("products/update", product, webhook_id=delivery)
    again = shopify.send("products/update", product, webhook_id=delivery)
    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == "queued" and again.json()["status"] == "duplicate"
    settle(api)
    assert len(jobs(api, "shopify_product_event")) == 1


def test_a_webhook_is_answered_at_once_and_worked_on_later(api: ApiHarness, shopify: Shopify) -> None:
    product = sample_products(STORE)[2]
    began = time.monotonic()
    answer = shopify.update(product, title="Answered fast")
    elapsed = time.monotonic() - began
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    assert elapsed < 1.0  # Shopify gives up after 5 s
    info = api.ctx.status.get(answer.json()["id"])
    assert info is not None and info["pipeline"] == "shopify_product_event"
    settle(api)
    assert rows(api)[str(product["id"])]["title"] == "Answered fast"


def test_a_price_change_refreshes_the_row_without_a_new_generation(api: ApiHarness, shopify: Shopify) -> None:
    product = sample_products(STORE)[3]
    pid = str(product["id"])
    variants = [{**v, "price": "99.95"} for v in product["variants"]]
    assert shopify.update(product, variants=variants).status_code == 200
    settle(api)
    assert rows(api)[pid]["price"] == "99.95"
    assert jobs(api, "regenerate_copy") == [] and jobs(api, "product_copy", pid) == []


def test_a_burst_of_copy_edits_makes_one_generation_from_the_last(api: ApiHarness, shopify: Shopify) -> None:
    from domain.keys import product_copy_key

    product = sample_products(STORE)[4]
    pid = str(product["id"])
    # When the merchant edits the title five times in a row
    for n in range(5):
        assert shopify.update(product, title=f"Edited title {n}").status_code == 200
    settle(api)
    # Then the row has the last title, and one copy generation ran, from that version
    assert rows(api)[pid]["title"] == "Edited title 4"
    (generation,) = jobs(api, "product_copy", pid)
    assert generation["status"] == "done", generation
    assert generation["trigger"] == "webhook"
    copy = json.loads(api.ctx.store.get(product_copy_key(STORE, pid)).body)
    assert copy["meta"]["product_id"] == pid and copy["meta"]["draft"] is False
    # And the edits that regenerated nothing are there too: four regenerations superseded
    superseded = [j for j in jobs(api, "regenerate_copy") if j.get("progress") == "superseded"]
    assert len(jobs(api, "regenerate_copy")) - len(superseded) == 1


def test_a_draft_is_hidden_and_its_new_copy_marked_draft(api: ApiHarness, shopify: Shopify) -> None:
    from domain.keys import product_copy_key

    product = sample_products(STORE)[5]
    pid = str(product["id"])
    assert (
        shopify.update(product, title="Not yet launched", status="draft", published_at=None).status_code
        == 200
    )
    settle(api)
    assert rows(api)[pid]["visibility"] == "draft"
    copy = json.loads(api.ctx.store.get(product_copy_key(STORE, pid)).body)
    assert copy["meta"]["draft"] is True and copy["meta"]["product_status"] == "draft"


def test_a_delete_removes_the_row_and_the_copy_the_storefront_reads(
    api: ApiHarness, shopify: Shopify
) -> None:
    from adapters.errors import NotFound
    from adapters.store import put_json
    from domain.keys import product_copy_key

    product = sample_products(STORE)[6]
    pid = str(product["id"])
    key = product_copy_key(STORE, pid)
    put_json(api.ctx.store, key, {"title": "old copy", "meta": {}})
    answer = shopify.send("products/delete", {"id": product["id"]})
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    settle(api)
    assert pid not in rows(api)
    with pytest.raises(NotFound):
        api.ctx.store.get(key)
    # And an update of it delivered late does not bring it back
    assert shopify.update(product, title="Late edit").json()["status"] == "queued"
    settle(api)
    assert pid not in rows(api)
    assert jobs(api, "product_copy", pid) == []


def test_a_shop_no_store_has_and_other_topics_are_acknowledged_and_ignored(
    api: ApiHarness, shopify: Shopify
) -> None:
    product = admin(sample_products(STORE)[7])
    unknown = shopify.send("products/update", product, shop="someone-else.myshopify.com")
    other = shopify.send("orders/create", {"id": 1})
    assert unknown.status_code == other.status_code == 200
    assert unknown.json()["status"] == other.json()["status"] == "ignored"
    settle(api)
    assert jobs(api, "shopify_product_event") == []


def test_an_older_edit_arriving_late_changes_nothing(api: ApiHarness, shopify: Shopify) -> None:
    from pipelines.catalog_state import CatalogState

    product = sample_products(STORE)[8]
    pid = str(product["id"])
    at = time.time()

    def stamp(offset: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(at + offset))

    # Given an edit, then an older one delivered after it (Shopify does not promise order)
    assert shopify.send(
        "products/update", admin(product, title="Newer title", updated_at=stamp(100))
    ).is_success
    assert shopify.send(
        "products/update", admin(product, title="Older title", updated_at=stamp(50))
    ).is_success
    settle(api)
    # Then the row, and the product a regeneration writes from, are the newer edit
    assert rows(api)[pid]["title"] == "Newer title"
    kept = CatalogState(api.ctx.redis).product(STORE, pid)
    assert kept is not None and kept["title"] == "Newer title"
    assert len(jobs(api, "product_copy", pid)) == 1


def test_the_webhook_of_our_own_push_regenerates_nothing(api: ApiHarness, shopify: Shopify) -> None:
    from domain.drafts import content_hash
    from pipelines.drafts_push import PUSHED

    product = sample_products(STORE)[9]  # not one an earlier test deleted
    pid = str(product["id"])
    # Given approved copy this service pushed to the product in Shopify
    title, body = "Pushed title", "<p>Pushed description.</p>"
    api.ctx.redis.hset(PUSHED.format(store=STORE), pid, content_hash(title, body))
    # When Shopify sends the products/update webhook that push caused
    assert shopify.update(product, title=title, body_html=body).status_code == 200
    settle(api)
    # Then the row has the pushed text, and no copy generation ran (no push-webhook-push loop)
    assert rows(api)[pid]["title"] == title
    assert jobs(api, "product_copy", pid) == []
    assert [j.get("progress") for j in jobs(api, "regenerate_copy")] == ["superseded"]
