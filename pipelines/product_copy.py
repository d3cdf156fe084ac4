"""Product copy: one Shopify product to a draft, and (policy permitting) to its `copy.json`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.errors import InvalidInput
from adapters.logs import get_logger
from agents.product_copy import ProductCopyAgent
from agents.shopify import describe_errors, parse_product
from agents.usage import CallContext
from domain.catalog import ARCHIVED, DRAFT, UNPUBLISHED, visibility
from domain.drafts import draft_key
from domain.keys import check_store, product_copy_key
from pipelines.accounting import list_cost_nano, record_result_cache_hit, served_from_cache
from pipelines.drafts_review import propose_copy
from pipelines.publish import build_meta, input_hash
from pipelines.services import Services

PIPELINE = "product_copy"
log = get_logger("pipelines.product_copy")


class CopyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    brand_voice: str | None = Field(default=None, max_length=500)
    force_fresh: bool = False
    locale: str | None = Field(default=None, pattern=r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")


@dataclass
class Published:
    key: str  # the live copy's key, or the draft's while it waits for review
    product_id: str
    meta: dict[str, Any]
    draft_id: str = ""
    live: bool = True
    push: bool = False  # approved copy queued for the store's Shopify push

    @property
    def cost_usd(self) -> str:
        return str(self.meta["cost_usd"])


def parse_options(options: Any) -> CopyOptions:
    if options is None:
        return CopyOptions()
    if not isinstance(options, dict):
        raise InvalidInput(f"options must be a JSON object, got {type(options).__name__}")
    try:
        return CopyOptions.model_validate(options)
    except ValidationError as exc:
        raise InvalidInput("invalid options: " + describe_errors(exc)) from None


async def generate_product_copy(
    svc: Services,
    store: str,
    product: Any,
    options: Any = None,
    *,
    job_id: str = "",
) -> Published:
    """Validate, write and check copy for one product, as a draft; publish it if the store's policy says so.

    Invalid input writes nothing.
    """
    check_store(store)
    item = parse_product(product)
    opts = parse_options(options)
    key = product_copy_key(store, item.id)
    agent = ProductCopyAgent(svc.runtime)
    ctx = CallContext(store=store, pipeline=PIPELINE, job_id=job_id, force_fresh=opts.force_fresh)
    prompt = await agent.prompt_for(ctx.for_agent(agent.name))
    variables = agent.variables(
        item,
        brand_voice=opts.brand_voice,
        locale=opts.locale,
        model=prompt.meta.model,
        token_budget=prompt.meta.input_token_budget,
    )
    digest = input_hash(PIPELINE, prompt.ref, prompt.meta.model, variables)
    # Copy may be written for a product shoppers cannot see yet; it says so (domain/catalog.py).
    shown = visibility(item.status, item.published, item.for_sale())
    extra = {
        "store": store,
        "product_id": item.id,
        "locale": variables["locale"],
        "product_status": shown,
        "draft": shown in (DRAFT, ARCHIVED, UNPUBLISHED),
    }

    async def compute() -> dict[str, Any]:
        run = await agent.run(ctx, variables, version=prompt.version)
        meta = build_meta(pipeline=PIPELINE, run=run, digest=digest, job_id=job_id, extra=extra)
        saved = list_cost_nano(run.records, svc.settings.price_overrides)
        logs = [r.gateway_log_id for r in run.records if r.gateway_log_id]
        return {"body": run.output.model_dump(), "meta": meta, "list_cost_nano": saved, "log_ids": logs}

    # The digest covers prompt version, model and normalized input: equal digests, equal copy.
    # Shared within the store only: another merchant's identical product is generated anew.
    got = await svc.results.get_or_compute(PIPELINE, digest, compute, store=store, fresh=opts.force_fresh)
    meta = got.value["meta"]
    if got.hit:
        meta = served_from_cache(meta, job_id=job_id, extra=extra)
        await record_result_cache_hit(
            svc.runtime.sink,
            ctx.for_agent(agent.name),
            prompt_ref=prompt.ref,
            model=prompt.meta.model,
            key=digest,
            saved_nano=int(got.value.get("list_cost_nano", 0)),
        )
    # Off the event loop: an R2 PUT takes tens of ms, and this loop is serving hundreds of jobs.
    proposed = await svc.write(
        propose_copy,
        svc.redis,
        svc.store,
        store=store,
        product=item.model_dump(mode="json"),
        body=got.value["body"],
        meta=meta,
        image_ids=list(variables["image_ids"]),
        job_id=job_id,
        log_ids=[] if got.hit else list(got.value.get("log_ids") or []),
    )
    log.info(
        "copy_published" if proposed.live else "copy_waits_for_review",
        store=store,
        product_id=item.id,
        key=key,
        draft_id=proposed.draft_id,
        cost_usd=meta["cost_usd"],
        served=meta["served"],
        prompt=prompt.ref,
    )
    where = key if proposed.live else draft_key(store, proposed.draft_id)
    return Published(
        key=where,
        product_id=item.id,
        meta=meta,
        draft_id=proposed.draft_id,
        live=proposed.live,
        push=proposed.push,
    )
