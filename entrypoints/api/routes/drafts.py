"""Review: a store's drafts, read (`read`) and decided (`publish`): approve, with edits, or reject."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from adapters.errors import InvalidInput, NotFound
from adapters.tokens import Principal
from domain.drafts import DRAFT_ID_RE, MAX_REASON, draft_id_for
from domain.keys import ID_RE
from entrypoints.api.auth import needs, principal_of
from entrypoints.api.common import IdPath, StorePath, bearer, ctx_of, json_body, read_body
from entrypoints.api.errors import GATED, STORE_PATH, WITH_BODY, ApiError, declare, invalid_field
from pipelines.drafts import DraftConflict, DraftNotFound

# Every route reads drafts from the object store (502, or 503 when it is slow or failing).
router = APIRouter(
    prefix="/v1", tags=["drafts"], dependencies=[Depends(bearer)], responses=declare(*GATED, *STORE_PATH, 502)
)
DraftPath = Annotated[
    str, Path(pattern=DRAFT_ID_RE.pattern, description="A draft id (a generation's draft_id)")
]


class DraftRow(BaseModel):
    """A draft as listed: its state, not its body."""

    model_config = ConfigDict(extra="allow")

    id: str
    kind: Literal["copy", "theme"]
    status: Literal["pending", "approved", "rejected", "live"]
    product_id: str | None = None
    build_id: str | None = None
    checks_passed: bool | None = None
    prompt_ref: str | None = None
    shopify: dict[str, Any] | None = Field(
        default=None, description='copy only: {"status": "off"|"queued"|"pushed"|"conflict"|"failed", ...}'
    )
    created_at: float
    updated_at: float


class DraftList(BaseModel):
    store: str
    drafts: list[DraftRow]


class Draft(BaseModel):
    """A whole draft: what it proposes (`body`), its checks, its diff, meta, decisions and Shopify push."""

    model_config = ConfigDict(extra="allow")

    id: str
    store: str
    kind: Literal["copy", "theme"]
    status: Literal["pending", "approved", "rejected", "live"]
    product_id: str | None = None
    build_id: str | None = None
    checks: list[dict[str, Any]]
    diff: dict[str, Any] = Field(
        description="live: against what is live; catalog (copy): the merchant's text"
    )
    meta: dict[str, Any] = Field(description="cost_usd, prompt_ref, prompt_version, model, served, ...")
    body: dict[str, Any]
    final: dict[str, Any] | None = Field(default=None, description="What was published, when edited")
    decisions: list[dict[str, Any]] = Field(description="Who decided what, when, and what changed")
    shopify: dict[str, Any] | None = None


class Approval(BaseModel):
    """Optional: the merchant's edits (copy fields), validated and sanitized like model output."""

    model_config = ConfigDict(extra="forbid")

    edits: dict[str, Any] | None = Field(
        default=None,
        description="title, description_html, bullets, seo_title, meta_description, image_alts",
    )
    note: str | None = Field(default=None, max_length=MAX_REASON)


# The approval's body may be left out entirely (approve as proposed).
OPTIONAL_APPROVAL = {**json_body(Approval, cap="generation")}
OPTIONAL_APPROVAL["requestBody"] = {**OPTIONAL_APPROVAL["requestBody"], "required": False}


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_REASON, description="Why: feedback for the prompt")


class BatchApproval(BaseModel):
    batch: str
    store: str
    approved: list[str]
    skipped: list[dict[str, Any]] = Field(description="Drafts that were not pending, with their status")
    failed: list[dict[str, Any]]


def decider(principal: Principal) -> str:
    """Who a decision is recorded as: the token's public id (never the token)."""
    return "ops" if principal.is_ops else f"token:{principal.token_id}"


NOT_PENDING = "The draft is not pending (`draft_not_pending`; `details` name its status)"


def _not_found(exc: Exception) -> ApiError:
    return ApiError(404, "not_found", str(exc))


def _conflict(exc: DraftConflict) -> ApiError:
    return ApiError(
        409,
        "draft_not_pending",
        str(exc),
        details=[{"field": "status", "rule": "pending", "message": exc.status}],
    )


def _followup(request: Request, store: str, draft: dict[str, Any]) -> None:
    from pipelines.drafts_push import followup_due, submit_followup

    if followup_due(draft):
        submit_followup(ctx_of(request).broker, store, draft["id"])


async def _decide(
    request: Request, store: str, decision: Callable[[], dict[str, Any]], *, field: str, rule: str
) -> dict[str, Any]:
    """Run a reviewer's `decision` on the store pool; its refusals as API errors; then its follow-up."""
    ctx = ctx_of(request)
    try:
        draft = await ctx.pools.store.run(decision, abandon=False)
    except DraftNotFound as exc:
        raise _not_found(exc) from None
    except DraftConflict as exc:
        raise _conflict(exc) from None
    except InvalidInput as exc:
        raise invalid_field(field, str(exc).removeprefix(f"{field}: "), rule) from None
    await ctx.pools.redis.run(_followup, request, store, draft)
    return draft


@router.get(
    "/stores/{store}/drafts", response_model=DraftList, dependencies=[needs("read", "reading drafts")]
)
async def list_drafts(
    store: StorePath,
    request: Request,
    kind: Annotated[Literal["copy", "theme"] | None, Query(description="copy or theme")] = None,
    status: Annotated[
        Literal["pending", "approved", "rejected", "live"] | None, Query(description="pending, ...")
    ] = None,
    product: Annotated[str | None, Query(pattern=ID_RE.pattern, description="A product id")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """The store's drafts, newest first, by kind, status and product. Needs scope `read`."""
    from pipelines.drafts import Drafts

    ctx = ctx_of(request)
    drafts = Drafts(ctx.redis, ctx.store)
    rows = await ctx.pools.redis.run(
        lambda: drafts.list(store, kind=kind, status=status, product=product, limit=limit)
    )
    return {"store": store, "drafts": rows}


@router.get(
    "/stores/{store}/drafts/{draft_id}",
    response_model=Draft,
    responses=declare(404, s404="No draft with that id"),
    dependencies=[needs("read", "reading a draft")],
)
async def get_draft(store: StorePath, draft_id: DraftPath, request: Request) -> Any:
    """One draft: checks, diff (against what is live; copy also the catalog), meta and decisions."""
    from pipelines.drafts import Drafts

    ctx = ctx_of(request)
    try:
        return await ctx.pools.store.run(Drafts(ctx.redis, ctx.store).get, store, draft_id)
    except NotFound as exc:
        raise _not_found(exc) from None


@router.post(
    "/stores/{store}/drafts/{draft_id}/approve",
    response_model=Draft,
    responses=declare(*WITH_BODY, 404, 409, s404="No draft with that id", s409=NOT_PENDING),
    dependencies=[needs("publish", "approving a draft")],
    openapi_extra=OPTIONAL_APPROVAL,
)
async def approve_draft(store: StorePath, draft_id: DraftPath, request: Request) -> Any:
    """Publish a pending draft, optionally with the merchant's edits (copy). Needs scope `publish`."""
    from pipelines.drafts_review import approve

    ctx = ctx_of(request)
    body = (await read_body(request, Approval)).model if (await request.body()).strip() else Approval()
    by = decider(principal_of(request))
    decision = functools.partial(
        approve,
        ctx.redis,
        ctx.store,
        store,
        draft_id,
        by=by,
        edits=body.edits,
        note=body.note,
        to_gateway=ctx.settings.cf_api_token is not None,
    )
    return await _decide(request, store, decision, field="edits", rule="copy_schema")


@router.post(
    "/stores/{store}/drafts/{draft_id}/reject",
    response_model=Draft,
    responses=declare(*WITH_BODY, 404, 409, s404="No draft with that id", s409=NOT_PENDING),
    dependencies=[needs("publish", "rejecting a draft")],
    openapi_extra=json_body(Rejection, cap="generation"),
)
async def reject_draft(store: StorePath, draft_id: DraftPath, request: Request) -> Any:
    """Keep a pending draft off the storefront; the reason becomes feedback. Needs scope `publish`."""
    from pipelines.drafts_review import reject

    ctx = ctx_of(request)
    body = (await read_body(request, Rejection)).model
    by = decider(principal_of(request))
    decision = functools.partial(
        reject,
        ctx.redis,
        ctx.store,
        store,
        draft_id,
        by=by,
        reason=body.reason,
        to_gateway=ctx.settings.cf_api_token is not None,
    )
    return await _decide(request, store, decision, field="reason", rule="required")


@router.post(
    "/stores/{store}/batches/{batch_id}/approve",
    response_model=BatchApproval,
    responses=declare(*WITH_BODY, 404, s404="The store has no batch with that id"),
    dependencies=[needs("publish", "approving a batch's drafts")],
)
async def approve_batch(store: StorePath, batch_id: IdPath, request: Request) -> Any:
    """Approve every pending draft a catalog-copy batch wrote (the others are listed, untouched)."""
    from pipelines.batches import job_ids
    from pipelines.drafts import Drafts
    from pipelines.drafts_review import approve_many

    ctx = ctx_of(request)
    summary = await ctx.pools.redis.run(ctx.batches.get, batch_id)
    if summary is None or summary.store != store:
        raise ApiError(404, "not_found", f"store {store!r} has no batch {batch_id!r}")
    by = decider(principal_of(request))

    def work() -> dict[str, Any]:
        ids = [draft_id_for(store, "copy", job) for job in job_ids(ctx.redis, batch_id)]
        done = approve_many(ctx.redis, ctx.store, store, ids, by=by)
        drafts = Drafts(ctx.redis, ctx.store)
        for draft_id in done["approved"]:
            _followup(request, store, drafts.get(store, draft_id))
        return done

    done = await ctx.pools.store.run(work, abandon=False)
    return JSONResponse(BatchApproval(batch=batch_id, store=store, **done).model_dump())
