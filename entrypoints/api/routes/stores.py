"""Stores and their catalogs: add or change a store, set its Admin API token, upload or sync its products."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from typing import IO, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from adapters.errors import InvalidInput, UnknownStore
from adapters.stores import StoreFields, StoreRegistry, parse_fields
from entrypoints.api.auth import needs, principal_of
from entrypoints.api.common import StorePath, bearer, ctx_of, json_body, read_body
from entrypoints.api.errors import GATED, STORE_PATH, WITH_BODY, ApiError, declare, invalid_field

router = APIRouter(prefix="/v1", tags=["stores"], dependencies=[Depends(bearer)], responses=declare(*GATED))
SPOOL_BYTES = 1024 * 1024


class StoreView(BaseModel):
    """A store as kept: the fields of `PUT`, its slug, when it was added and changed, and whether
    its Shopify Admin API token is set."""

    store: str
    name: str
    shop_domain: str
    currency: str
    locale: str
    brand_voice: str
    publish: dict[str, str] = Field(
        description='What goes live without review: {"copy": "auto", "theme": "review"}'
    )
    shopify_push: bool
    shopify_token_set: bool = Field(description="Whether an Admin API token is set (it is never returned)")
    created_at: str
    updated_at: str


class AdminToken(BaseModel):
    """A store's Shopify Admin API token (`shpat_...`): kept encrypted, never echoed back."""

    model_config = ConfigDict(extra="forbid")

    admin_token: str = Field(min_length=8, max_length=256, pattern=r"^\S+$")


class AdminTokenSet(BaseModel):
    store: str
    shopify_token_set: bool = True
    set_at: str


class SkippedProduct(BaseModel):
    id: str | None = None
    title: str | None = None
    reason: str


class CatalogSummary(BaseModel):
    """What a store's catalog holds: only `live` products reach shoppers."""

    store: str
    source: str = Field(description="upload, shopify, or webhooks (edits since)")
    currency: str | None = None
    updated_at: str | None = None
    live: int = Field(description="Products shoppers may see")
    draft: int = Field(description="Drafts: kept, copy may be written, never shown")
    skipped: int = Field(description="Products that could not be read; each listed with its reason")
    hidden: dict[str, int] = Field(
        description="Every product not shown, by why: draft, archived, unpublished, ..."
    )
    total: int
    skipped_products: list[SkippedProduct]
    sync: dict[str, Any] | None = Field(
        default=None, description="The last Shopify sync: pages, requests, throttling"
    )


class SyncAccepted(BaseModel):
    id: str
    status: str
    status_url: str
    already_running: bool = Field(description="True when a sync of this store was queued or running already")


def unknown_store(exc: UnknownStore) -> ApiError:
    """404 naming `stores add` (the gate refuses unknown stores first; one removed meanwhile ends here)."""
    return ApiError(404, "unknown_store", str(exc))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ops_only(request: Request, action: str) -> None:
    if not principal_of(request).is_ops:
        raise ApiError(403, "forbidden", f"only the ops token (OPS_API_TOKEN) may {action}")


def store_view(registry: StoreRegistry, store: str) -> dict[str, Any]:
    record = registry.require(store)
    view = record.public()
    view.update(
        shopify_token_set=registry.sealed_admin_token(store) is not None,
        created_at=_iso(record.created_at),
        updated_at=_iso(record.updated_at),
    )
    return StoreView(**view).model_dump()


def summary_view(summary: dict[str, Any]) -> dict[str, Any]:
    counts = summary.get("counts") or {}
    hidden = {k: int(counts.get(k, 0)) for k in ("draft", "archived", "unpublished", "unavailable")}
    return CatalogSummary(
        store=summary["store"],
        source=summary.get("source") or "upload",
        currency=summary.get("currency"),
        updated_at=summary.get("updated_at"),
        live=int(counts.get("live", 0)),
        draft=hidden["draft"],
        skipped=int(counts.get("skipped", 0)),
        hidden=hidden,
        total=int(counts.get("total", 0)),
        skipped_products=[SkippedProduct(**s) for s in summary.get("skipped") or []],
        sync=summary.get("sync"),
    ).model_dump()


@router.put(
    "/stores/{store}",
    response_model=StoreView,
    responses={
        201: {"model": StoreView, "description": "The store was added"},
        **declare(*WITH_BODY, 403, s403="Only the ops token may add or change a store"),
    },
    openapi_extra=json_body(StoreFields, cap="generation"),
)
async def put_store(store: StorePath, request: Request) -> Any:
    """Add a store, or replace its fields (ops token only). 201 when it was added."""
    _ops_only(request, "add or change a store")
    ctx = ctx_of(request)
    fields = (await read_body(request, StoreFields)).model
    registry = StoreRegistry(ctx.redis)

    def put() -> tuple[dict[str, Any], bool]:
        _, created = registry.put(store, parse_fields(fields.model_dump(by_alias=True)))
        return store_view(registry, store), created

    try:
        view, created = await ctx.pools.redis.run(put)
    except InvalidInput as exc:
        raise invalid_field(str(exc).split(":", 1)[0], str(exc), "unique") from None
    return JSONResponse(view, status_code=201 if created else 200)


@router.get(
    "/stores/{store}",
    response_model=StoreView,
    responses=declare(*STORE_PATH),
    dependencies=[needs("read", "reading a store")],
)
async def get_store(store: StorePath, request: Request) -> Any:
    """A store's fields, and whether its Shopify Admin API token is set (never the token)."""
    ctx = ctx_of(request)
    try:
        return await ctx.pools.redis.run(store_view, StoreRegistry(ctx.redis), store)
    except UnknownStore as exc:
        raise unknown_store(exc) from None


@router.put(
    "/stores/{store}/shopify",
    response_model=AdminTokenSet,
    responses=declare(*STORE_PATH, *WITH_BODY),
    openapi_extra=json_body(AdminToken, cap="generation"),
)
async def put_admin_token(store: StorePath, request: Request) -> Any:
    """Set the store's Shopify Admin API token (ops token only); stored encrypted, never returned."""
    from adapters.secretbox import open_box

    _ops_only(request, "set a store's Shopify Admin API token")
    ctx = ctx_of(request)
    token = (await read_body(request, AdminToken)).model.admin_token
    registry = StoreRegistry(ctx.redis)
    sealed = open_box(ctx.settings).seal(token)
    try:
        await ctx.pools.redis.run(registry.set_admin_token, store, sealed)
    except UnknownStore as exc:
        raise unknown_store(exc) from None
    set_at = await ctx.pools.redis.run(registry.admin_token_set_at, store)
    return AdminTokenSet(store=store, set_at=_iso(set_at or 0)).model_dump()


@router.get(
    "/stores/{store}/catalog",
    response_model=CatalogSummary,
    responses=declare(
        *STORE_PATH, 502, s404="The store was never added, or has no catalog yet (`no_catalog`)"
    ),
    dependencies=[needs("read", "reading the catalog")],
)
async def get_catalog(store: StorePath, request: Request) -> Any:
    """Counts (live, draft, skipped), source and age of the catalog, and why each product was skipped."""
    from pipelines.catalog_snapshot import read_summary

    ctx = ctx_of(request)
    summary = await ctx.pools.store.run(read_summary, ctx.store, store)
    if summary is None:
        raise ApiError(
            404,
            "no_catalog",
            f"store {store!r} has no catalog yet: PUT /v1/stores/{store}/catalog (a products export) "
            f"or POST /v1/stores/{store}/catalog/sync",
        )
    return summary_view(summary)


async def _spool(request: Request, max_bytes: int, idle_s: float) -> IO[bytes]:
    """The body into a spooled file as it arrives: at most `max_bytes` (413), no gap over `idle_s` (408)."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115  (closed by caller)
    size = 0
    chunks = request.stream().__aiter__()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(anext(chunks), idle_s)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise ApiError(
                    408, "body_timeout", f"the upload stalled for {idle_s:g}s (API_BODY_TIMEOUT_S)"
                ) from None
            size += len(chunk)
            if size > max_bytes:
                raise ApiError(
                    413,
                    "body_too_large",
                    f"the export is larger than {max_bytes} bytes (CATALOG_EXPORT_MAX_BYTES)",
                    headers={"Connection": "close"},
                )
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


@router.put(
    "/stores/{store}/catalog",
    response_model=CatalogSummary,
    responses=declare(*STORE_PATH, *WITH_BODY, 502),
    dependencies=[needs("catalog", "replacing the catalog")],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "description": 'A storefront products.json ({"products": [...]}) '
                        "or an Admin REST export"
                    }
                }
            },
        },
        "x-body-stream": "catalog",
    },
)
async def put_catalog(store: StorePath, request: Request) -> Any:
    """Replace the store's catalog with a products export, read as it streams in (CATALOG_EXPORT_MAX_BYTES).

    Needs scope `catalog`. Products that cannot be read are skipped, each with its reason;
    an export with no readable product is refused and the catalog is left as it was.
    """
    from pipelines.catalog_snapshot import write_export

    ctx = ctx_of(request)
    settings = ctx.settings
    try:
        record = await ctx.pools.redis.run(StoreRegistry(ctx.redis).require, store)
    except UnknownStore as exc:
        raise unknown_store(exc) from None
    spool = await _spool(request, settings.catalog_export_max_bytes, settings.api_body_timeout_s)
    try:
        # Seconds of parsing for a large export: the batch threads, which are never timed out.
        summary = await ctx.pools.batch.run(
            lambda: write_export(ctx.store, store, spool, source="upload", currency=record.currency)
        )
    except InvalidInput as exc:
        raise invalid_field("body", str(exc), "products_export") from None
    finally:
        spool.close()
    return summary_view(summary)


@router.post(
    "/stores/{store}/catalog/sync",
    status_code=202,
    response_model=SyncAccepted,
    responses=declare(
        *STORE_PATH,
        *WITH_BODY,
        409,
        s409="The store has no Shopify Admin API token yet (`shopify_not_connected`)",
    ),
    dependencies=[needs("catalog", "syncing the catalog")],
)
async def sync_catalog(store: StorePath, request: Request) -> Any:
    """Start a `catalog_sync` job on `batch` (one per store at a time): poll `status_url` for its progress."""
    from pipelines.catalog_sync import submit_sync

    ctx = ctx_of(request)
    try:
        job_id, new = await ctx.pools.redis.run(submit_sync, ctx.broker, ctx.status, ctx.redis, store)
    except UnknownStore as exc:
        raise unknown_store(exc) from None
    except InvalidInput as exc:
        raise ApiError(409, "shopify_not_connected", str(exc)) from None
    info = await ctx.pools.redis.run(ctx.status.get, job_id) or {}
    url = str(request.url_for("get_generation", id=job_id))
    body = SyncAccepted(
        id=job_id, status=str(info.get("status", "queued")), status_url=url, already_running=not new
    )
    return JSONResponse(body.model_dump(), status_code=202)
