"""Review over HTTP with the Procfile's worker processes: drafts, decisions, feedback and the Shopify push."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.api import OPS_TOKEN, RunningApi, serve_app
from tests.fixtures.shopify import ShopifyStandIn, rest_payload, sample_catalog


@pytest.fixture
def review_api(lane: Any, shopify_server: ShopifyStandIn) -> Iterator[tuple[RunningApi, Any]]:
    """The API over the lane's Redis and store; the Procfile's batch worker generates and pushes."""
    from adapters.settings import load_settings
    from entrypoints import compose
    from entrypoints.api import create_app

    settings = load_settings(
        redis_url=lane.redis.url, local_store_dir=lane.store_dir, ops_api_token=OPS_TOKEN
    )
    ctx = compose.api_context(settings, store=lane.objects(), broker=lane.broker)
    with serve_app(create_app(ctx)) as running:
        yield running, ctx


def poll(client: httpx.Client, url: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(url).json()
        if body.get("status") in ("done", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def until(
    read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout_s: float = 60.0
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = read()
        if done(got):
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.05)


def add_store(ops: httpx.Client, store: str, **fields: Any) -> None:
    body = {"shop_domain": f"{store}.myshopify.com", "currency": "GBP", **fields}
    answer = ops.put(f"/v1/stores/{store}", json=body)
    assert answer.status_code in (200, 201), answer.text


def generate_copy(client: httpx.Client, store: str, product: dict[str, Any]) -> dict[str, Any]:
    asked = client.post(
        f"/v1/stores/{store}/generations", json={"pipeline": "product_copy", "input": {"product": product}}
    )
    assert asked.status_code == 202, asked.text
    done = poll(client, asked.json()["status_url"])
    assert done["status"] == "done", done
    return done


def test_copy_waits_for_review_then_a_merchant_edits_approves_and_rejects(
    review_api: tuple[RunningApi, Any],
) -> None:
    running, ctx = review_api
    store, other = "review-linen", "review-other"
    products = [p.rest for p in sample_catalog(3, seed_id=9_300_000_000_000)]
    with running.client(OPS_TOKEN) as ops:
        # Given a store that reviews copy before it goes live
        add_store(ops, store, publish={"copy": "review", "theme": "review"})
        add_store(ops, other)
        assert ops.get(f"/v1/stores/{store}").json()["publish"] == {"copy": "review", "theme": "review"}
    storefront = ctx.tokens.create(store, "storefront").token  # read, generate
    merchant = ctx.tokens.create(store, "merchant", scopes=("read", "publish")).token
    stranger = ctx.tokens.create(other, "stranger", scopes=("read", "publish")).token
    with running.client(storefront) as front, running.client(merchant) as shop:
        # When copy is generated for three products
        statuses = [generate_copy(front, store, p) for p in products]
        # Then each generation names its draft and did not go live; the storefront key is empty
        assert all(s["draft_id"] and s["live"] is False for s in statuses)
        assert all(s["output_keys"] == [f"stores/{store}/drafts/{s['draft_id']}.json"] for s in statuses)
        copy_key = f"stores/{store}/products/{products[0]['id']}/copy.json"
        assert not ctx.store.exists(copy_key)
        # And the review queue lists them, filterable by product
        listed = front.get(f"/v1/stores/{store}/drafts", params={"status": "pending", "kind": "copy"}).json()
        assert {d["id"] for d in listed["drafts"]} == {s["draft_id"] for s in statuses}
        one = front.get(f"/v1/stores/{store}/drafts", params={"product": str(products[0]["id"])}).json()
        assert [d["id"] for d in one["drafts"]] == [statuses[0]["draft_id"]]
        # And a draft shows its checks, meta and the diff against the merchant's own catalog text
        first = statuses[0]["draft_id"]
        draft = front.get(f"/v1/stores/{store}/drafts/{first}").json()
        assert draft["kind"] == "copy" and draft["status"] == "pending" and draft["checks"]
        assert draft["meta"]["prompt_version"] and draft["meta"]["model"] and "cost_usd" in draft["meta"]
        catalog = {row["field"]: row for row in draft["diff"]["catalog"]}
        assert catalog["title"]["before"] == products[0]["title"] and draft["diff"]["live"] is None
        assert draft["shopify"] == {"status": "off"}
        # And deciding needs the publish scope; another store's token sees nothing of it
        denied = front.post(f"/v1/stores/{store}/drafts/{first}/approve")
        assert denied.status_code == 403 and "publish" in denied.json()["error"]["message"]
        with running.client(stranger) as them:
            assert them.get(f"/v1/stores/{store}/drafts/{first}").status_code == 403
            assert them.get(f"/v1/stores/{other}/drafts/{first}").status_code == 404

        # When the merchant approves the first with an edit that carries markup
        edits = {
            "title": "<b>Linen</b> throw <script>alert(1)</script>",
            "bullets": ["Soft", "Warm", "Washable"],
        }
        approved = shop.post(f"/v1/stores/{store}/drafts/{first}/approve", json={"edits": edits})
        assert approved.status_code == 200, approved.text
        body = approved.json()
        # Then the edit was sanitized like model output and is what went live
        assert body["status"] == "live" and body["final"]["title"] == "Linen throw"
        live = json.loads(ctx.store.get(copy_key).body)
        assert live["title"] == "Linen throw" and live["bullets"] == ["Soft", "Warm", "Washable"]
        assert live["meta"]["draft_id"] == first and live["meta"]["edited"] is True
        # And the decision names the token, the time and what changed
        decision = body["decisions"][-1]
        assert decision["action"] == "approve" and decision["by"].startswith("token:") and decision["at"]
        assert {c["field"] for c in decision["changes"]} == {"title", "bullets"}
        # And a decided draft cannot be decided again
        again = shop.post(f"/v1/stores/{store}/drafts/{first}/reject", json={"reason": "changed my mind"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "draft_not_pending"

        # When an edit breaks the copy schema, it is refused naming the field, and nothing changes
        second = statuses[1]["draft_id"]
        bad = shop.post(
            f"/v1/stores/{store}/drafts/{second}/approve", json={"edits": {"seo_title": "x" * 61}}
        )
        assert bad.status_code == 422 and "seo_title" in bad.json()["error"]["message"]
        unknown = shop.post(f"/v1/stores/{store}/drafts/{second}/approve", json={"edits": {"price": "1"}})
        assert unknown.status_code == 422 and "price" in unknown.json()["error"]["message"]
        assert shop.get(f"/v1/stores/{store}/drafts/{second}").json()["status"] == "pending"

        # When the merchant rejects it with a reason
        rejected = shop.post(f"/v1/stores/{store}/drafts/{second}/reject", json={"reason": "Too much hype"})
        assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
        assert rejected.json()["decisions"][-1]["reason"] == "Too much hype"
        assert shop.post(f"/v1/stores/{store}/drafts/{second}/reject", json={"reason": ""}).status_code == 422
    # Then the rejection and the edit are feedback kept with the prompt version, and eval cases
    from pipelines.drafts_feedback import cases, feedback

    kept = [f for f in feedback(ctx.redis, "product_copy") if f["store"] == store]
    assert {(f["action"], f["draft_id"]) for f in kept} == {("edit", first), ("reject", second)}
    assert all(f["prompt_version"] == draft["meta"]["prompt_version"] for f in kept)
    made = cases(kept)
    assert len(made) == 2 and all(c["input"]["id"] for c in made)
    from agents.evals.cases import Case

    assert all(Case.model_validate({k: v for k, v in c.items() if k != "note"}) for c in made)


def test_a_theme_build_waits_for_review_and_goes_live_when_approved(
    review_api: tuple[RunningApi, Any],
) -> None:
    running, ctx = review_api
    store = "review-theme"
    with running.client(OPS_TOKEN) as ops:
        add_store(ops, store)  # the default policy: themes are reviewed
        products = {"products": [p.rest for p in sample_catalog(12, seed_id=9_400_000_000_000)]}
        assert ops.put(f"/v1/stores/{store}/catalog", json=products).status_code == 200
        brief = {"description": "Calm, practical drinkware for long days outside."}
        asked = ops.post(
            f"/v1/stores/{store}/generations", json={"pipeline": "theme_build", "input": {"brief": brief}}
        )
        built = poll(ops, asked.json()["status_url"], timeout_s=180)
        # Then the build is published under its prefix, but the storefront's pointer was not moved
        assert built["status"] == "done" and built["live"] is False, built
        assert not ctx.store.exists(f"themes/{store}/current.json")
        draft = ops.get(f"/v1/stores/{store}/drafts/{built['draft_id']}").json()
        assert draft["kind"] == "theme" and draft["build_id"] == built["id"].lower()
        assert any(c["name"] == "critic" for c in draft["checks"]) and draft["body"]["preview_key"]
        # When it is approved, the pointer names it
        approved = ops.post(f"/v1/stores/{store}/drafts/{built['draft_id']}/approve")
        assert approved.status_code == 200 and approved.json()["status"] == "live"
        pointer = json.loads(ctx.store.get(f"themes/{store}/current.json").body)
        assert pointer["build_id"] == draft["build_id"] and pointer["reason"] == "approved"


def test_approved_copy_is_pushed_to_shopify_and_a_merchant_s_edit_is_never_overwritten(
    review_api: tuple[RunningApi, Any], shopify_server: ShopifyStandIn
) -> None:
    running, _ = review_api
    store = "review-push"
    shop = shopify_server.add_shop(
        f"{store}.myshopify.com", products=sample_catalog(2, seed_id=9_500_000_000_000)
    )
    first, second = (shop.products[pid] for pid in sorted(shop.products))
    with running.client(OPS_TOKEN) as ops:
        # Given a store that publishes copy automatically and pushes it to Shopify
        add_store(ops, store, shopify_push=True)
        assert ops.put(f"/v1/stores/{store}/shopify", json={"admin_token": shop.token}).status_code == 200
        # And a Shopify that is briefly unavailable and another app draining the bucket
        shopify_server.fail_next = 1
        shopify_server.compete_every = 3
        # When copy is generated for a product as Shopify serves it
        status = generate_copy(ops, store, rest_payload(first))
        assert status["live"] is True
        url = f"/v1/stores/{store}/drafts/{status['draft_id']}"
        # Then it is pushed: title, description and SEO on the product, alt text on its images
        pushed = until(lambda: ops.get(url).json(), lambda d: d["shopify"]["status"] not in ("off", "queued"))
        assert pushed["shopify"]["status"] == "pushed", pushed["shopify"]
        copy = pushed["body"]
        assert first.rest["title"] == copy["title"] and first.rest["body_html"] == copy["description_html"]
        assert first.rest["seo"] == {"title": copy["seo_title"], "description": copy["meta_description"]}
        alts = {str(a["image_id"]): a["alt"] for a in copy["image_alts"]}
        described = [image for image in first.rest["images"] if str(image["id"]) in alts]
        assert described and all(image["alt"] == alts[str(image["id"])] for image in described)
        assert any(s.outcome == "unavailable" for s in shopify_server.served)
        shopify_server.compete_every = 0

        # Given a store that now reviews copy, and a draft for the second product
        add_store(ops, store, shopify_push=True, publish={"copy": "review", "theme": "review"})
        waiting = generate_copy(ops, store, rest_payload(second))
        assert waiting["live"] is False
        # When the merchant edits the product in Shopify before the draft is approved
        shopify_server.edit_product(shop.domain, second.id, title="The merchant's own title")
        approved = ops.post(f"/v1/stores/{store}/drafts/{waiting['draft_id']}/approve")
        assert approved.status_code == 200 and approved.json()["shopify"]["status"] == "queued"
        # Then the push is refused as a conflict, the draft says so, and the merchant's title stays
        url = f"/v1/stores/{store}/drafts/{waiting['draft_id']}"
        refused = until(lambda: ops.get(url).json(), lambda d: d["shopify"]["status"] != "queued")
        assert (
            refused["shopify"]["status"] == "conflict"
            and "changed in Shopify" in refused["shopify"]["detail"]
        )
        assert second.rest["title"] == "The merchant's own title"
        assert refused["decisions"][-1]["action"] == "shopify_push"
        assert refused["decisions"][-1]["status"] == "conflict"
        assert refused["status"] == "live"  # the storefront has it; Shopify keeps the merchant's text
    pushes = [
        m for m in shopify_server.mutations if m["shop"] == shop.domain and m["name"] == "productUpdate"
    ]
    assert [m["input"]["id"] for m in pushes] == [f"gid://shopify/Product/{first.id}"]
    assert shopify_server.invalid == []


def test_a_batch_s_drafts_are_approved_at_once(review_api: tuple[RunningApi, Any]) -> None:
    running, ctx = review_api
    store = "review-batch"
    products = [p.rest for p in sample_catalog(4, seed_id=9_600_000_000_000)]
    with running.client(OPS_TOKEN) as ops:
        add_store(ops, store, publish={"copy": "review", "theme": "review"})
        batch = ops.post(f"/v1/stores/{store}/catalog-copy", json={"products": products})
        assert batch.status_code == 202, batch.text
        status_url = batch.json()["status_url"]
        until(lambda: ops.get(status_url).json(), lambda b: b["state"] not in ("queued", "running"), 120)
        assert len(ops.get(f"/v1/stores/{store}/drafts", params={"status": "pending"}).json()["drafts"]) == 4
        # When the batch is approved
        done = ops.post(f"/v1/stores/{store}/batches/{batch.json()['id']}/approve")
        # Then every draft of it is live, and its copy at the storefront's key
        assert done.status_code == 200 and len(done.json()["approved"]) == 4, done.text
        assert all(ctx.store.exists(f"stores/{store}/products/{p['id']}/copy.json") for p in products)
        # And another store cannot approve it
        assert ops.post(f"/v1/stores/review-linen/batches/{batch.json()['id']}/approve").status_code == 404
