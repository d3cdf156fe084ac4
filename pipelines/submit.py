"""Enqueue jobs the way any Dramatiq client would: by actor name and queue, JSON arguments only."""

from __future__ import annotations

from typing import Any

from dramatiq import Broker, Message

from adapters.pipeline_names import canonical
from adapters.telemetry import trace_headers
from agents.shopify import parse_product
from domain.keys import check_id, check_store
from pipelines.cohorts import parse_context
from pipelines.fair_dispatch import send as fair_send
from pipelines.product_copy import parse_options
from pipelines.queues import BATCH, INTERACTIVE
from pipelines.status import JobStatus


def queued(
    status: JobStatus,
    *,
    actor: str,
    queue: str,
    args: tuple[Any, ...],
    store: str,
    extra: dict[str, Any] | None = None,
) -> Message[Any]:
    """Record the job as queued and return its message, for the caller to enqueue."""
    # The enqueuing request's trace context (when traces are on): the job's span continues it.
    options = trace_headers()
    message: Message[Any] = Message(queue_name=queue, actor_name=actor, args=args, kwargs={}, options=options)
    status.queued(message.message_id, pipeline=canonical(actor), store=store, queue=queue, **(extra or {}))
    return message


def send(
    broker: Broker,
    status: JobStatus,
    *,
    actor: str,
    queue: str,
    args: tuple[Any, ...],
    store: str,
    extra: dict[str, Any] | None = None,
    bulk: bool = False,
) -> str:
    """Record the job as queued, then enqueue it; returns the job (message) id.

    A batch-lane job goes through the store's fair lane (`pipelines/fair.py`); `bulk` puts it
    behind the store's single requests (a catalog batch's jobs).
    """
    message = queued(status, actor=actor, queue=queue, args=args, store=store, extra=extra)
    fair_send(broker, store, [message], bulk=bulk)
    return message.message_id


def product_copy_message(
    status: JobStatus,
    store: str,
    product: Any,
    options: dict[str, Any] | None = None,
    *,
    extra: dict[str, Any] | None = None,
) -> Message[Any]:
    """Validate (raises `InvalidInput`), record the `product_copy` job as queued; its message, not sent."""
    check_store(store)
    item = parse_product(product)
    parse_options(options)
    return queued(
        status,
        actor="product_copy",
        queue=BATCH,
        args=(store, product, options or {}),
        store=store,
        extra={"product_id": item.id, **(extra or {})},
    )


def submit_product_copy(
    broker: Broker,
    status: JobStatus,
    store: str,
    product: Any,
    options: dict[str, Any] | None = None,
    *,
    extra: dict[str, Any] | None = None,
) -> str:
    """Validate first (nothing is enqueued for bad input), then enqueue `product_copy`.

    `extra` goes into the job status before the job can run (e.g. `callback_url`, `batch`).
    """
    message = product_copy_message(status, store, product, options, extra=extra)
    fair_send(broker, store, [message])
    return message.message_id


def submit_theme_build(
    broker: Broker,
    status: JobStatus,
    store: str,
    brief: Any,
    *,
    objects: Any = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Validate first (and, given the object store, the catalog snapshot); returns the build id."""
    from agents.theme.inputs import parse_brief
    from pipelines.theme_build import load_catalog

    check_store(store)
    parsed = parse_brief(brief)
    if objects is not None:
        load_catalog(objects, store)
    return send(
        broker,
        status,
        actor="build_theme",
        queue=BATCH,
        args=(store, parsed.model_dump(exclude_none=True)),
        store=store,
        extra=extra,
    )


def submit_personalize(
    broker: Broker,
    status: JobStatus,
    store: str,
    shopper_id: Any,
    context: dict[str, Any] | None = None,
    *,
    extra: dict[str, Any] | None = None,
) -> str:
    """Validate first (nothing is enqueued for bad input), then enqueue `personalize` on `interactive`.

    The callback is delivered by the interactive worker itself, from `context.callback_url`.
    A `callback_url` in `extra` is moved there rather than into the job status, where the
    batch webhook follow-up would deliver it late, and a second time.
    """
    check_store(store)
    shopper = check_id(shopper_id, "shopper id")
    fields = dict(extra or {})
    callback = fields.pop("callback_url", None)
    if callback and isinstance(context, dict) and not context.get("callback_url"):
        context = {**context, "callback_url": str(callback)}
    elif callback and context is None:
        context = {"callback_url": str(callback)}
    parse_context(context)
    return send(
        broker,
        status,
        actor="personalize",
        queue=INTERACTIVE,
        args=(store, shopper, context or {}),
        store=store,
        extra={"shopper_id": shopper, **fields},
    )
