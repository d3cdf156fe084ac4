"""Shopify's product webhooks, after the API verified and queued them: keep the snapshot and copy current.

1. `stage_event` (actor `shopify_product_event`): the product becomes a row (or a skip
   entry, or a deletion), staged in Redis; a fold is scheduled `catalog_apply_delay_ms` out,
   so a burst of edits is one snapshot write. A deletion also removes the product's copy
   from the key the storefront reads, at once.
2. `apply_staged` (actor `catalog_apply`): folds the staged edits into the snapshot (newest
   `updated_at` wins: Shopify does not promise order). Waits while a sync is writing.
   A product whose copy fields changed (title, body, vendor, type, tags, options, images)
   gets a regeneration scheduled `copy_regen_debounce_s` out, under a fresh token.
3. `regenerate` (actor `regenerate_copy`): runs only if its token is still the product's
   latest, so a burst of edits makes one generation, from the product as last sent; it is
   an ordinary `product_copy` job with the store's brand voice and locale.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from dramatiq import Broker, Message

from adapters.errors import InvalidInput, NotFound
from adapters.logs import get_logger
from adapters.stores import StoreRegistry
from domain.catalog import shopify_time
from domain.keys import check_id, check_store, product_copy_key
from pipelines.catalog_rows import Skipped, row_of
from pipelines.catalog_snapshot import Applied, apply_changes
from pipelines.catalog_state import CatalogState
from pipelines.queues import BATCH
from pipelines.services import Services
from pipelines.submit import submit_product_copy

TOPICS = ("products/create", "products/update", "products/delete")
SYNC_WAIT_MS = 5000  # how often a fold waiting for a sync looks again
log = get_logger("pipelines.product_webhooks")


def later(broker: Broker, actor: str, args: tuple[Any, ...], delay_ms: int) -> str:
    """Enqueue an internal follow-up on `batch`, `delay_ms` from now."""
    message: Message[Any] = Message(queue_name=BATCH, actor_name=actor, args=args, kwargs={}, options={})
    broker.enqueue(message, delay=delay_ms or None)
    return message.message_id


def schedule_apply(svc: Services, broker: Broker, store: str, delay_ms: int | None = None) -> bool:
    """Schedule a fold of the store's staged edits unless one is already due; True if this one did."""
    delay = svc.settings.catalog_apply_delay_ms if delay_ms is None else delay_ms
    state = CatalogState(svc.redis)
    if not state.claim_apply(store, delay + 60_000):
        return False
    try:
        later(broker, "catalog_apply", (store,), delay)
    except Exception:
        state.apply_started(store)  # nothing is scheduled after all: let the next event try
        raise
    return True


async def stage_event(svc: Services, broker: Broker, store: str, topic: str, payload: Any) -> dict[str, Any]:
    """Stage one product event; returns what it was (for the job's status)."""
    check_store(store)
    if topic not in TOPICS:
        raise InvalidInput(f"topic {topic!r} is not a product topic ({', '.join(TOPICS)})")
    if not isinstance(payload, dict):
        raise InvalidInput(f"a {topic} payload must be a JSON object")
    state = CatalogState(svc.redis)
    if topic == "products/delete":
        pid = check_id(payload.get("id"), "product id")
        state.stage(store, pid, None, None)
        state.forget_product(store, pid)  # and any regeneration still due
        with contextlib.suppress(NotFound):  # the storefront reads this key: gone at once
            await asyncio.to_thread(svc.store.delete, product_copy_key(store, pid))
        schedule_apply(svc, broker, store)
        return {"product_id": pid, "change": "deleted"}
    record = StoreRegistry(svc.redis).get(store)
    currency = record.currency if record is not None else None
    try:
        change: dict[str, Any] = await asyncio.to_thread(row_of, payload, currency)
        pid = change["id"]
        kind = change["visibility"]
    except Skipped as skipped:
        if skipped.product_id is None:
            raise InvalidInput(f"{topic}: {skipped.reason}") from None
        pid = check_id(skipped.product_id, "product id")
        change, kind = skipped.entry(), "skipped"
    when = shopify_time(payload.get("updated_at"))
    at = when.timestamp() if when else None
    if not state.stage(store, pid, change, at):
        return {"product_id": pid, "change": "stale"}  # a newer edit, or the deletion, is staged
    if kind != "skipped":
        state.keep_product(store, pid, payload, at)
    schedule_apply(svc, broker, store)
    return {"product_id": pid, "change": kind}


async def apply_staged(svc: Services, broker: Broker, store: str) -> Applied | None:
    """Fold the staged edits into the snapshot and schedule regenerations; None when there were none."""
    state = CatalogState(svc.redis)
    if state.sync_running(store) is not None:
        later(broker, "catalog_apply", (store,), SYNC_WAIT_MS)  # the sync folds them in when it is done
        return None
    state.apply_started(store)
    changes = state.take_staged(store)
    if not changes:
        return None
    try:
        applied = await asyncio.to_thread(apply_changes, svc.store, store, changes)
    except BaseException:
        state.restage(store, changes)
        raise
    debounce_s = svc.settings.copy_regen_debounce_s
    for pid in applied.copy_changed:
        token = state.regen_due(store, pid, debounce_s)
        later(broker, "regenerate_copy", (store, pid, token), int(debounce_s * 1000))
    log.info(
        "catalog_edits_applied",
        store=store,
        written=len(applied.written),
        removed=len(applied.removed),
        stale=len(applied.stale),
        regenerations=len(applied.copy_changed),
    )
    return applied


def regenerate(svc: Services, broker: Broker, store: str, product_id: str, token: str) -> str | None:
    """Queue the product's copy if `token` is still its latest regeneration; returns that job's id."""
    state = CatalogState(svc.redis)
    if not state.take_regen(store, product_id, token):
        return None  # a later edit scheduled its own; that one generates
    product = state.product(store, product_id)
    if product is None:
        return None  # deleted since, or too long ago to have the full product
    from pipelines.drafts_push import pushed_by_us

    if pushed_by_us(svc.redis, store, product_id, product):
        return None  # the edit was our own push of approved copy (its webhook): nothing new to write
    options: dict[str, Any] = {}
    record = StoreRegistry(svc.redis).get(store)
    if record is not None:
        options = {"brand_voice": record.brand_voice or None, "locale": record.locale}
    options = {k: v for k, v in options.items() if v}
    return submit_product_copy(broker, svc.status, store, product, options, extra={"trigger": "webhook"})
