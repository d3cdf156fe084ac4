"""The Dramatiq actors other programs enqueue by name (see DESIGN.md "Contracts").

The functions are plain coroutines; `declare_actors` declares them on a broker the
composition root built (nothing is declared, and no broker is made, at import).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
from dramatiq import Actor, Broker
from dramatiq.middleware import CurrentMessage

from adapters.errors import InvalidInput, PermanentError, RetryableError
from adapters.retry import honour
from pipelines.middleware import record_result, should_retry
from pipelines.product_copy import generate_product_copy
from pipelines.queues import BATCH, DELIVERIES, INTERACTIVE
from pipelines.services import get_services

NEVER_RETRY = (PermanentError, InvalidInput)


def current_job_id() -> str:
    message = CurrentMessage.get_current_message()
    return message.message_id if message is not None else ""


async def run_job(work: Callable[[str], Awaitable[Any]]) -> Any:
    """Run one job; a rate limit with retry-after becomes a Dramatiq retry after that long."""
    job_id = current_job_id()
    try:
        return await work(job_id)
    except RetryableError as exc:
        if exc.retry_after is not None:
            raise dramatiq.Retry(str(exc), delay=int(honour(exc.retry_after) * 1000)) from exc
        raise


async def product_copy(store: str, product: dict[str, Any], options: dict[str, Any] | None = None) -> None:
    """Write and publish storefront copy for one Shopify product."""
    svc = get_services()

    async def work(job_id: str) -> None:
        published = await generate_product_copy(svc, store, product, options, job_id=job_id)
        if published.push:
            from pipelines.drafts_push import submit_followup

            submit_followup(dramatiq.get_broker(), store, published.draft_id)
        record_result(
            job_id,
            output_keys=[published.key],
            cost_usd=published.cost_usd,
            served=published.meta["served"],
            draft_id=published.draft_id,
            live=str(published.live).lower(),
            progress="published" if published.live else "waiting for review",
        )

    await run_job(work)


async def deliver_webhook(store: str, job_id: str) -> None:
    """POST a finished job's result to its callback_url, signed; retried with backoff."""
    from pipelines.delivery import deliver_job

    svc = get_services()
    await deliver_job(svc.redis, svc.store, svc.settings, store, job_id)


async def build_theme(store: str, brief: dict[str, Any]) -> None:
    """Design, check, render and publish a storefront theme; the build id is the message id."""
    from pipelines.theme_build import build_id_for, status_progress
    from pipelines.theme_build import build_theme as run_build

    svc = get_services()

    async def work(job_id: str) -> None:
        build_id = build_id_for(job_id)
        svc.status.update(job_id, build_id=build_id)
        result = await run_build(
            svc, store, brief, build_id=build_id, job_id=job_id, progress=status_progress(svc, job_id)
        )
        pointer = [result.pointer_key] if result.live else []
        record_result(
            job_id,
            output_keys=[result.theme_key, result.preview_key, *pointer],
            cost_usd=result.meta["cost_usd"],
            served=result.meta["served"],
            draft_id=result.draft_id,
            live=str(result.live).lower(),
            progress="done",
        )

    await run_job(work)


async def draft_followup(store: str, draft_id: str) -> None:
    """After a draft was decided: mark AI Gateway's logs with the feedback, push approved copy to Shopify."""
    from pipelines.drafts_push import followup

    svc = get_services()

    async def work(job_id: str) -> None:
        done = await followup(svc, store, draft_id)
        record_result(job_id, progress=f"feedback {done['feedback']}, shopify {done['shopify']}")

    await run_job(work)


def _delivery_retry(retries: int, exc: BaseException) -> bool:
    # deliver_job bounds its attempts itself (WEBHOOK_MAX_ATTEMPTS), and a deferral is no attempt.
    return isinstance(exc, dramatiq.Retry) or should_retry(retries, exc)


def _interactive_retry(retries: int, exc: BaseException) -> bool:
    # A shopper is waiting: after a couple of quick tries the answer would only be late.
    return retries < 2 and should_retry(retries, exc)


async def personalize(store: str, shopper_id: str, context: dict[str, Any] | None = None) -> None:
    """Personalize one shopper's storefront and publish it within the caller's `deadline_ms`."""
    from pipelines.personalize import personalize_shopper

    svc = get_services()
    message = CurrentMessage.get_current_message()
    # The deadline counts from enqueue: time spent queued is the caller's time too.
    enqueued_at = message.message_timestamp / 1000 if message is not None else None

    async def work(job_id: str) -> None:
        published = await personalize_shopper(
            svc, store, shopper_id, context, job_id=job_id, enqueued_at=enqueued_at
        )
        record_result(
            job_id,
            output_keys=[published.key],
            cost_usd=published.cost_usd,
            served=published.meta["served"],
            fallback=published.meta["fallback"] or "",
            cohort=published.meta["cohort"],
            cohort_cache=published.cohort_cache,
            published_at=published.published_at,
            progress="published",
        )

    await run_job(work)


async def catalog_sync(store: str) -> None:
    """Pull the store's whole catalog from its Shopify Admin API into its snapshot (progress per page)."""
    from pipelines.catalog_state import CatalogState
    from pipelines.catalog_sync import sync_catalog
    from pipelines.product_webhooks import schedule_apply

    svc = get_services()

    async def work(job_id: str) -> None:
        def progress(fields: dict[str, Any]) -> None:
            if job_id:
                svc.status.update(job_id, **fields)

        synced = await sync_catalog(svc, store, job_id=job_id, progress=progress)
        if CatalogState(svc.redis).has_staged(store):  # webhook edits that waited for the sync
            schedule_apply(svc, dramatiq.get_broker(), store, delay_ms=0)
        counts = synced.summary["counts"]
        record_result(
            job_id,
            output_keys=synced.keys,
            progress=f"done: {counts['total']} products ({counts['live']} live), {counts['skipped']} skipped",
            synced=counts["total"],
            live=counts["live"],
            skipped=counts["skipped"],
            cost_usd="0",
        )

    await run_job(work)


async def shopify_product_event(store: str, topic: str, product: dict[str, Any]) -> None:
    """One verified Shopify product webhook: stage the edit; a fold and a regeneration follow, debounced."""
    from pipelines.product_webhooks import stage_event

    svc = get_services()

    async def work(job_id: str) -> None:
        staged = await stage_event(svc, dramatiq.get_broker(), store, topic, product)
        record_result(job_id, progress=f"staged: {staged['change']}", product_id=staged["product_id"])

    await run_job(work)


async def catalog_apply(store: str) -> None:
    """Fold the store's staged product edits into its snapshot (one write for a burst of webhooks)."""
    from pipelines.product_webhooks import apply_staged

    svc = get_services()
    await run_job(lambda job_id: apply_staged(svc, dramatiq.get_broker(), store))


async def regenerate_copy(store: str, product_id: str, token: str) -> None:
    """Queue a product's copy after its copy fields stopped changing (superseded tokens do nothing)."""
    from pipelines.product_webhooks import regenerate

    svc = get_services()

    async def work(job_id: str) -> None:
        copy_job = regenerate(svc, dramatiq.get_broker(), store, product_id, token)
        record_result(job_id, progress="queued product_copy" if copy_job else "superseded", copy_job=copy_job)

    await run_job(work)


def declare_actors(broker: Broker) -> dict[str, Actor[Any, Any]]:
    """Declare every actor on `broker` under its contract name and queue."""
    batch: dict[str, Any] = {"broker": broker, "queue_name": BATCH, "throws": NEVER_RETRY}
    declared = [
        dramatiq.actor(actor_name="product_copy", **batch)(product_copy),
        # Its own queue (a slow receiver holds no batch work up), ahead of prefetched batch jobs.
        dramatiq.actor(
            broker=broker,
            actor_name="deliver_webhook",
            queue_name=DELIVERIES,
            throws=NEVER_RETRY,
            retry_when=_delivery_retry,
            min_backoff=100,  # a delivery put off while its store has its fill in flight
            max_backoff=5000,
            priority=-1,
        )(deliver_webhook),
        dramatiq.actor(actor_name="build_theme", **batch)(build_theme),
        # A 10,000-product catalog at Shopify's standard rate takes longer than the default limit.
        dramatiq.actor(actor_name="catalog_sync", time_limit=6 * 3600 * 1000, **batch)(catalog_sync),
        dramatiq.actor(actor_name="shopify_product_event", **batch)(shopify_product_event),
        dramatiq.actor(actor_name="catalog_apply", **batch)(catalog_apply),
        dramatiq.actor(actor_name="regenerate_copy", **batch)(regenerate_copy),
        dramatiq.actor(actor_name="draft_followup", **batch)(draft_followup),
        dramatiq.actor(
            broker=broker,
            actor_name="personalize",
            queue_name=INTERACTIVE,
            throws=NEVER_RETRY,
            retry_when=_interactive_retry,
            min_backoff=100,
            max_backoff=1000,
            time_limit=60_000,
        )(personalize),
    ]
    return {a.actor_name: a for a in declared}
