"""Generations: ask for one (`POST`), then watch it (`GET`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from adapters.egress import check_callback_url
from adapters.errors import InvalidInput
from entrypoints.api.auth import needs, principal_of, require_scope, require_store
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
from entrypoints.api.schemas import Accepted, Delivery, GenerationRequest, GenerationStatus, JobError
from entrypoints.api.submitters import SUBMITTERS

router = APIRouter(
    prefix="/v1", tags=["generations"], dependencies=[Depends(bearer)], responses=declare(*GATED)
)

# What a person can do about a failed job, by the error's type.
WHAT_TO_DO = {
    "InvalidInput": "The input was refused: fix the field named in the message and POST a new generation.",
    "InvalidOutput": "The model's answer failed validation even after a repair; POST again with "
    "options.force_fresh=true, and report the prompt named in the message to ops if it repeats.",
    "BudgetExceeded": "The store's daily budget or the per-job cap was reached; wait for the next UTC day "
    "or ask ops to raise DAILY_BUDGET_USD / JOB_CAP_USD.",
    "RateLimited": "The model provider kept rate-limiting through every retry; POST again in a few minutes.",
    "PermanentGatewayError": "The AI gateway refused the request (credentials, model or request); "
    "ops must check the gateway configuration.",
    "JobLost": "Redis lost the job's message, so it never ran to the end: POST the generation again "
    "(ops: docs/failures.md, 'A job reported lost').",
}
TRANSIENT = "A dependency stayed unavailable through every retry; POST again later (ops: see /healthz)."
UNKNOWN = "An unexpected error; ops can find this job id in the worker logs."


def describe_error(error: str | None) -> JobError | None:
    if not error:
        return None
    kind, sep, message = error.partition(": ")
    if not sep or " " in kind:
        kind, message = "Error", error
    if kind in WHAT_TO_DO:
        action = WHAT_TO_DO[kind]
    elif kind.startswith("Transient") or kind in ("BrokerUnavailable", "TimeoutError", "TimeLimitExceeded"):
        action = TRANSIENT
    else:
        action = UNKNOWN
    return JobError(type=kind, message=message, what_to_do=action)


def status_view(request: Request, info: dict[str, Any]) -> GenerationStatus:
    store = info.get("store")
    keys = [str(k) for k in info.get("output_keys") or []]
    status = str(info.get("status", "queued"))
    return GenerationStatus(
        id=info["id"],
        store=store,
        pipeline=info.get("pipeline"),
        status=status,
        progress=info.get("progress"),
        attempts=int(info.get("attempts", 0)),
        output_keys=keys,
        output_urls=[str(request.url_for("get_output", store=store, key=k)) for k in keys] if store else [],
        cost_usd=info.get("cost_usd"),
        served=info.get("served"),
        draft_id=info.get("draft_id"),
        live={"true": True, "false": False}.get(str(info.get("live"))),
        # A retrying job keeps its last error in the hash; it is an error only once the job failed.
        error=describe_error(info.get("error")) if status in ("failed", "lost") else None,
        batch=info.get("batch"),
        callback_url=info.get("callback_url"),
        webhook=info.get("webhook"),
        deliveries=[Delivery(**{**d, "at": iso(d.get("at"))}) for d in info.get("deliveries") or []],
        created_at=iso(info.get("created_at")),
        started_at=iso(info.get("started_at")),
        finished_at=iso(info.get("finished_at")),
        updated_at=iso(info.get("updated_at")),
    )


@router.post(
    "/stores/{store}/generations",
    status_code=202,
    response_model=Accepted,
    responses=declare(*STORE_PATH, *WITH_BODY, 402, 409, 501, 502),
    dependencies=[needs("generate", "asking for a generation")],
    openapi_extra=json_body(GenerationRequest, cap="generation"),
)
async def create_generation(
    store: StorePath, request: Request, idempotency_key: IdempotencyKey = None
) -> Any:
    """Validate and enqueue one generation; poll `status_url` or wait for the `callback_url`.

    Needs scope `generate`; a `theme_build` also `publish` (it makes the build live), and one
    with `input.products` also `catalog` (it replaces the catalog snapshot). Body: at most
    API_GENERATION_MAX_BODY_BYTES.
    """
    ctx = ctx_of(request)
    parsed = await read_body(request, GenerationRequest)
    body = parsed.model.body
    submit = SUBMITTERS.get(body.pipeline)
    if submit is None:
        raise ApiError(
            501,
            "not_deployed",
            f"pipeline {body.pipeline!r} is not deployed in this build; nothing was enqueued",
        )
    principal = principal_of(request)
    if body.pipeline == "theme_build":
        require_scope(principal, "publish", "a theme build (it makes the new theme live)")
        if body.input.products is not None:
            require_scope(principal, "catalog", "a theme build with input.products (it replaces the catalog)")

    extra: dict[str, Any] = {}
    if body.callback_url is not None:
        try:
            extra["callback_url"] = check_callback_url(
                str(body.callback_url), allow_private=ctx.settings.webhook_allow_private_hosts
            )
        except InvalidInput as exc:
            raise invalid_field("callback_url", str(exc), "public_address") from None

    # A theme build writes the catalog snapshot and reads it back: the object store's threads.
    # The others only enqueue: Redis's. Neither waits behind the other.
    pool = ctx.pools.store if body.pipeline == "theme_build" else ctx.pools.redis

    async def work() -> tuple[int, dict[str, Any]]:
        # Personalization still answers (its fallback costs nothing); the others would only fail.
        if body.pipeline != "personalization":
            await refuse_if_budget_spent(ctx, store)
        job_id = await pool.run(submit, ctx, store, body, extra, abandon=False)
        request.app.state.metrics.generations.labels(body.pipeline).inc()
        url = str(request.url_for("get_generation", id=job_id))
        return 202, Accepted(id=job_id, status_url=url).model_dump()

    return await idempotent(ctx, f"{store}:generations", idempotency_key, parsed, work)


@router.get(
    "/generations/{id}",
    response_model=GenerationStatus,
    name="get_generation",
    responses=declare(404, 422, s404="No generation with that id (statuses are kept for 7 days)"),
    dependencies=[needs("read", "reading a generation's status")],
)
async def get_generation(id: IdPath, request: Request) -> GenerationStatus:
    """Status, progress, outputs, cost, how it was served, the error and webhook deliveries."""
    ctx = ctx_of(request)
    info = await ctx.pools.redis.run(ctx.status.get, id)
    if info is None:
        raise ApiError(404, "not_found", f"no generation {id!r} (status is kept for 7 days)")
    require_store(principal_of(request), str(info.get("store")))
    return status_view(request, info)
