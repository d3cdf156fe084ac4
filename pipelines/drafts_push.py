"""Approved copy to Shopify (opt-in per store, `shopify_push`), never over a merchant's edit.

`draft_followup(store, draft_id)` (queue `batch`) runs after a decision: it marks AI
Gateway's logs with the feedback (`drafts_feedback`), then pushes approved copy whose
`shopify.status` is `queued`. A push reads the product from the Admin API first and
compares it with what the draft was made from (`domain.drafts.changed_since`): a product
the merchant edited since is refused as `conflict` and the draft says so; nothing is
forced. Then `productUpdate` (title, description HTML, SEO title and description) and
`fileUpdate` (image alt text). The client waits out Shopify's throttle and retries
transient errors; what still fails is `failed` with the reason, and a transient failure
is retried by Dramatiq (the draft shows `retrying`).
"""

from __future__ import annotations

from typing import Any

import redis
from dramatiq import Broker, Message

from adapters.errors import BrokerUnavailable, PermanentError, RetryableError, ShopifyError
from adapters.logs import get_logger
from domain.drafts import changed_since, content_hash
from pipelines.drafts import Drafts
from pipelines.publish import now_iso
from pipelines.queues import BATCH
from pipelines.services import Services

ACTOR = "draft_followup"
PUSHED = "wandstore:drafts:{store}:pushed"  # product id -> hash of the text this service pushed last
log = get_logger("pipelines.drafts_push")


def followup_due(draft: dict[str, Any]) -> bool:
    """Whether a decided draft has work for the worker: a queued push, or feedback for the gateway."""
    shopify = draft.get("shopify") or {}
    due = draft.get("feedback") or {}
    return shopify.get("status") == "queued" or due.get("gateway") == "pending"


def submit_followup(broker: Broker, store: str, draft_id: str) -> str:
    """Queue `draft_followup(store, draft_id)`; any Dramatiq client may, by name."""
    message: Message[Any] = Message(
        queue_name=BATCH, actor_name=ACTOR, args=(store, draft_id), kwargs={}, options={}
    )
    broker.enqueue(message)
    return message.message_id


def _pushed_hashes(client: redis.Redis, store: str, product_id: str) -> list[str]:
    try:
        found = client.hget(PUSHED.format(store=store), product_id)
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"could not read pushed copy from Redis: {exc}") from None
    return [found.decode() if isinstance(found, bytes) else found] if found else []


def pushed_by_us(client: redis.Redis, store: str, product_id: str, product: dict[str, Any]) -> bool:
    """Whether the product's title and description are what this service pushed last.

    Shopify sends a `products/update` webhook for our own push too; regenerating copy for it
    would push again, and again.
    """
    now = content_hash(product.get("title"), product.get("body_html"))
    return now in _pushed_hashes(client, store, product_id)


async def push_copy(svc: Services, store: str, draft_id: str) -> dict[str, Any]:
    """Push one approved copy draft to its Shopify product; returns the draft's new `shopify` state."""
    from pipelines.catalog_sync import admin_api

    drafts = Drafts(svc.redis, svc.store)
    draft = drafts.get(store, draft_id)
    state = dict(draft.get("shopify") or {})
    if state.get("status") != "queued" or draft["status"] not in ("live", "approved"):
        return state
    attempts = int(state.get("attempts") or 0) + 1
    copy = draft.get("final") or draft["body"]
    product_id = str(draft["product_id"])
    source = draft.get("source") or {}
    try:
        async with admin_api(svc, store) as api:
            fresh = await api.product_text(product_id)
            if fresh is None:
                raise PermanentError(f"product {product_id} no longer exists in {api.shop}")
            if changed_since(source, fresh, _pushed_hashes(svc.redis, store, product_id)):
                state = {
                    "status": "conflict",
                    "at": now_iso(),
                    "attempts": attempts,
                    "detail": "the product was changed in Shopify since this draft was generated; "
                    "nothing was pushed (regenerate the copy from the current product, then approve)",
                    "shopify_updated_at": fresh.get("updated_at"),
                    "source_updated_at": source.get("updated_at"),
                }
                _record(drafts, store, draft_id, state)
                log.warning("shopify_push_conflict", store=store, draft_id=draft_id, product_id=product_id)
                return state
            updated = await api.update_product(
                product_id,
                title=copy["title"],
                description_html=copy["description_html"],
                seo_title=copy["seo_title"],
                seo_description=copy["meta_description"],
            )
            known = fresh.get("image_alts") or {}
            alts = {
                str(a["image_id"]): str(a["alt"])
                for a in copy.get("image_alts") or []
                if str(a["image_id"]) in known and known[str(a["image_id"])] != a["alt"]
            }
            await api.update_alt_text(alts)
            requests = api.requests
    except RetryableError as exc:
        # Still queued for the retry Dramatiq makes; the error shows meanwhile.
        state = {"status": "queued", "retrying": True, "at": now_iso(), "attempts": attempts}
        drafts.set_fields(store, draft_id, shopify={**state, "error": str(exc)})
        raise
    except (PermanentError, ShopifyError) as exc:
        state = {"status": "failed", "at": now_iso(), "attempts": attempts, "error": str(exc)}
        _record(drafts, store, draft_id, state)
        log.warning("shopify_push_failed", store=store, draft_id=draft_id, error=str(exc))
        return state
    try:
        svc.redis.hset(
            PUSHED.format(store=store), product_id, content_hash(copy["title"], copy["description_html"])
        )
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"could not record the push in Redis: {exc}") from None
    state = {
        "status": "pushed",
        "at": now_iso(),
        "attempts": attempts,
        "product_updated_at": updated.get("updatedAt"),
        "alt_texts": len(alts),
        "requests": requests,
    }
    _record(drafts, store, draft_id, state)
    log.info("shopify_pushed", store=store, draft_id=draft_id, product_id=product_id, alt_texts=len(alts))
    return state


def _record(drafts: Drafts, store: str, draft_id: str, state: dict[str, Any]) -> None:
    """The push's outcome on the draft (its `shopify`), and in its record of decisions."""
    entry = {"action": "shopify_push", "by": "worker", "at": state["at"], "status": state["status"]}
    if state.get("error") or state.get("detail"):
        entry["reason"] = str(state.get("error") or state.get("detail"))[:300]
    # One transaction: a reader never sees the outcome without its entry in the decisions.
    drafts.set_fields(store, draft_id, entry, shopify=state)


async def followup(svc: Services, store: str, draft_id: str) -> dict[str, Any]:
    """What a decision leaves for the worker: gateway feedback, then the Shopify push."""
    import asyncio

    from pipelines.drafts_feedback import send_gateway_feedback

    drafts = Drafts(svc.redis, svc.store)
    feedback = await asyncio.to_thread(send_gateway_feedback, svc.settings, drafts, store, draft_id)
    shopify = await push_copy(svc, store, draft_id) if drafts.state(store, draft_id)["kind"] == "copy" else {}
    return {"feedback": feedback, "shopify": shopify.get("status", "off")}
