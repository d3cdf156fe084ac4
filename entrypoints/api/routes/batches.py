"""Catalog-copy batches: many products, one id; done / failed / total and the failures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from adapters.errors import InvalidInput, NotFound
from adapters.store.base import check_key
from entrypoints.api.auth import needs, principal_of, require_store
from entrypoints.api.common import (
    IdempotencyKey,
    IdPath,
    StorePath,
    bearer,
    ctx_of,
    idempotent,
    iso,
    json_body,
    read_body,
    refuse_if_budget_spent,
)
from entrypoints.api.errors import (
    GATED,
    STORE_PATH,
    WITH_BODY,
    ApiError,
    declare,
    invalid_field,
)
from entrypoints.api.schemas import BatchFailure, BatchStatus, CatalogCopyRequest
from pipelines.batches import BatchSummary

router = APIRouter(prefix="/v1", tags=["batches"], dependencies=[Depends(bearer)], responses=declare(*GATED))


def batch_view(request: Request, summary: BatchSummary) -> BatchStatus:
    return BatchStatus(
        id=summary.id,
        store=summary.store,
        pipeline=summary.pipeline,
        state=summary.state,
        total=summary.total,
        done=summary.done,
        failed=summary.failed,
        pending=summary.pending,
        failures=[BatchFailure(**f) for f in summary.failures],
        created_at=iso(summary.created_at) or "",
        status_url=str(request.url_for("get_batch", id=summary.id)),
    )


@router.post(
    "/stores/{store}/catalog-copy",
    status_code=202,
    response_model=BatchStatus,
    responses=declare(*STORE_PATH, *WITH_BODY, 402, 409, 502, 503),
    dependencies=[needs("catalog", "a catalog-copy batch")],
    openapi_extra=json_body(CatalogCopyRequest, cap="upload"),
)
async def create_catalog_copy(
    store: StorePath, request: Request, idempotency_key: IdempotencyKey = None
) -> Any:
    """Copy for many products: valid ones are enqueued, invalid ones become failures with reasons.

    Needs scope `catalog`. Body: at most API_MAX_BODY_BYTES (a larger catalog goes in by
    `export_key`), parsed off the event loop; the batch is submitted on threads of its own.
    """
    ctx = ctx_of(request)
    settings = ctx.settings
    parsed = await read_body(request, CatalogCopyRequest)
    body = parsed.model

    def submit() -> BatchSummary:
        try:
            if body.export_key is not None:
                key = check_key(body.export_key)
                if not key.startswith(f"stores/{store}/"):
                    raise invalid_field("export_key", f"must be under 'stores/{store}/'", "prefix")
                try:
                    return ctx.batches.submit_export(
                        ctx.store, store, key, body.options, settings.catalog_export_max_bytes
                    )
                except NotFound:
                    raise invalid_field(
                        "export_key", f"no object {key!r} in the object store", "exists"
                    ) from None
            # The batch releases products as it enqueues them; the model must not hold them all meanwhile.
            products, body.products = list(body.products or []), None
            if len(products) > settings.catalog_batch_max_products:
                raise invalid_field(
                    "products",
                    f"at most {settings.catalog_batch_max_products} products per batch",
                    "too_long",
                )
            return ctx.batches.submit_catalog_copy(store, products, body.options)
        except InvalidInput as exc:
            field = (
                "options"
                if str(exc).startswith("invalid options")
                else ("export_key" if body.export_key is not None else "products")
            )
            raise invalid_field(field, str(exc)) from None

    async def work() -> tuple[int, dict[str, Any]]:
        await refuse_if_budget_spent(ctx, store)
        summary = await ctx.pools.batch.run(submit)
        return 202, batch_view(request, summary).model_dump()

    return await idempotent(ctx, f"{store}:catalog-copy", idempotency_key, parsed, work)


@router.get(
    "/batches/{id}",
    response_model=BatchStatus,
    name="get_batch",
    responses=declare(404, 422, s404="No batch with that id (batches are kept for 7 days)"),
    dependencies=[needs("read", "reading a batch")],
)
async def get_batch(id: IdPath, request: Request) -> BatchStatus:
    """Counts so far and every failure with its reason (up to 1,000)."""
    ctx = ctx_of(request)
    summary = await ctx.pools.redis.run(ctx.batches.get, id)
    if summary is None:
        raise ApiError(404, "not_found", f"no batch {id!r} (batches are kept for 7 days)")
    require_store(principal_of(request), summary.store)
    return batch_view(request, summary)
