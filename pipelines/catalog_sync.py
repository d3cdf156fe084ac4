"""`catalog_sync(store)`: the store's whole catalog from Shopify's Admin GraphQL API into its snapshot.

Pages stream through: each page of products becomes compact rows (off the event loop, which
serves the worker's other jobs) and is dropped, so memory follows the snapshot's rows, not
Shopify's answers. Progress goes into the job's status after every page. While a sync runs,
product webhooks stage their edits instead of writing (the sync would overwrite them); the
sync folds them in when it has written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from dramatiq import Broker, Message

from adapters.errors import InvalidInput, PermanentError
from adapters.logs import get_logger
from adapters.secretbox import open_box
from adapters.shopify_admin import AdminApi
from adapters.stores import StoreRegistry
from domain.keys import catalog_snapshot_key, catalog_summary_key, check_store
from pipelines.catalog_snapshot import SnapshotBuilder, publish_snapshot
from pipelines.catalog_state import CatalogState
from pipelines.queues import BATCH
from pipelines.services import Services
from pipelines.status import JobStatus

PIPELINE = "catalog_sync"
log = get_logger("pipelines.catalog_sync")
Progress = Callable[[dict[str, Any]], None]


@dataclass
class Synced:
    store: str
    summary: dict[str, Any]

    @property
    def keys(self) -> list[str]:
        return [catalog_snapshot_key(self.store), catalog_summary_key(self.store)]


def _add_page(builder: SnapshotBuilder, page: list[dict[str, Any]]) -> None:
    for product in page:
        builder.add(product)


def admin_api(svc: Services, store: str) -> AdminApi:
    """The store's Admin API client; refuses a store with no shop domain or no token, saying how to fix it."""
    registry = StoreRegistry(svc.redis)
    record = registry.require(store)
    sealed = registry.sealed_admin_token(store)
    if sealed is None:
        raise PermanentError(
            f"store {store!r} has no Shopify Admin API token: set one with "
            f"`wandstore-agents stores shopify-token {store}` or PUT /v1/stores/{store}/shopify"
        )
    settings = svc.settings
    return AdminApi(
        shop_domain=record.shop_domain,
        token=open_box(settings).open(sealed),
        version=settings.shopify_api_version,
        base_url=settings.shopify_api_base_url,
        timeout_s=settings.shopify_timeout_s,
    )


async def sync_catalog(svc: Services, store: str, *, job_id: str, progress: Progress | None = None) -> Synced:
    """Pull every product of the store's Shopify shop and publish them as its snapshot."""
    check_store(store)
    report = progress or (lambda _: None)
    state = CatalogState(svc.redis)
    api = admin_api(svc, store)
    holder = state.lock_sync(store, job_id)
    if holder is not None:
        await api.__aexit__()
        raise PermanentError(f"a catalog sync of {store!r} is already running (job {holder})")
    began = time.monotonic()
    try:
        async with api:
            shop = await api.shop_info()
            record = StoreRegistry(svc.redis).require(store)
            currency = shop.get("currencyCode") or record.currency
            if currency != record.currency:
                log.warning("shop_currency_differs", store=store, shop=currency, record=record.currency)
            builder = SnapshotBuilder(store, source="shopify", currency=currency)
            pages = 0
            async for page in api.product_pages(svc.settings.shopify_page_size):
                await asyncio.to_thread(_add_page, builder, page)
                pages += 1
                state.renew_sync(store, job_id)
                report(
                    {
                        "progress": f"{builder.total} products synced ({pages} pages)",
                        "synced": builder.total,
                        "pages": pages,
                        "throttled": api.throttled,
                        "throttle_wait_s": round(api.waited_s, 2),
                    }
                )
            body, summary = builder.body(allow_empty=True)
            summary["sync"] = {
                "job_id": job_id,
                "shop": api.shop,
                "pages": pages,
                "requests": api.requests,
                "throttled": api.throttled,
                "throttle_wait_s": round(api.waited_s, 2),
                "seconds": round(time.monotonic() - began, 2),
            }
            await asyncio.to_thread(publish_snapshot, svc.store, store, body, summary)
            del body
    finally:
        state.unlock_sync(store, job_id)
    log.info("catalog_synced", store=store, **summary["counts"], **summary["sync"])
    return Synced(store, summary)


def submit_sync(broker: Broker, status: JobStatus, svc_redis: redis.Redis, store: str) -> tuple[str, bool]:
    """Queue `catalog_sync(store)` unless one is queued or running; returns (job id, whether it is new).

    The sync's lock is taken here, under the new job's id, so a second request finds it at once.
    Refused (`InvalidInput`) for a store with no Admin API token: the job could only fail.
    """
    check_store(store)
    registry = StoreRegistry(svc_redis)
    registry.require(store)
    if registry.sealed_admin_token(store) is None:
        raise InvalidInput(
            f"store {store!r} has no Shopify Admin API token yet: set it with "
            f"`wandstore-agents stores shopify-token {store}` or PUT /v1/stores/{store}/shopify"
        )
    message: Message[Any] = Message(
        queue_name=BATCH, actor_name=PIPELINE, args=(store,), kwargs={}, options={}
    )
    holder = CatalogState(svc_redis).lock_sync(store, message.message_id)
    if holder is not None:
        return holder, False
    try:
        status.queued(message.message_id, pipeline=PIPELINE, store=store, queue=BATCH)
        broker.enqueue(message)
    except BaseException:
        CatalogState(svc_redis).unlock_sync(store, message.message_id)
        raise
    return message.message_id, True
