"""Shopper personalization: one generation per cohort, touched per shopper, published by the deadline.

The flow of one request:

1. validate; the candidates come from the payload or the store's catalog snapshot;
2. reduce the context to a cohort; the prompt sees the cohort and a shortlist, nothing personal;
3. the cohort's generation comes from the result cache, or from the model, computed once
   however many of the cohort's shoppers ask at the same time;
4. if that is not ready by the caller's deadline (counted from enqueue), or fails, the cohort's
   last good result serves, else a non-AI default ordering; `meta.served` says `fallback`.
   A generation that outlives the deadline keeps running and fills the cache for the next
   shopper;
5. recently viewed products are moved first (per shopper, by code), then the document is
   published with an expiry time; a signed callback is sent in the background.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.errors import BrokerUnavailable, InvalidInput, WandstoreError
from adapters.logs import get_logger
from adapters.pipeline_names import PERSONALIZATION
from adapters.rate_limiter import NoSlot
from adapters.stores import StoreRegistry
from agents.gateway import response_format_for
from agents.personalizer import PersonalizerAgent
from agents.prompts import Prompt
from agents.schemas.personalization import MIN_RANKED
from agents.tokens import count_messages
from agents.usage import CallContext, Served
from domain.i18n import pick
from domain.keys import catalog_snapshot_key, check_id, check_store, personalization_key
from pipelines.accounting import list_cost_nano, record_result_cache_hit, served_from_cache
from pipelines.background import keep, spawn
from pipelines.catalog_snapshot import snapshots
from pipelines.cohorts import (
    Catalog,
    ShopperContext,
    apply_touches,
    cohort_of,
    default_ranking,
    parse_context,
    shortlist,
)
from pipelines.delivery import deliver_callback, envelope
from pipelines.publish import build_meta, now_iso, publish
from pipelines.result_cache import Cached, cache_key
from pipelines.services import Services

PIPELINE = PERSONALIZATION
# The result cache's namespace for cohort generations: its old name, so entries written before stay valid.
CACHE = "personalize"
LAST_GOOD = "personalize_last_good"
LAST_GOOD_TTL_S = 7 * 24 * 3600
# Time kept back from the deadline for publishing (a local write is ~1 ms, an R2 PUT tens of ms).
PUBLISH_RESERVE_S = 0.02
# The words of a fallback (no model answered in time), by language: the shopper's, else the store's.
DEFAULT_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "headline": "Picked for you",
        "subheadline": "A few favourites from the store, chosen for what you have been browsing.",
        "banner_text": "Take a look at what is popular right now.",
    },
    "es": {
        "headline": "Elegidos para ti",
        "subheadline": "Algunos favoritos de la tienda, elegidos según lo que has estado viendo.",
        "banner_text": "Echa un vistazo a lo más popular ahora mismo.",
    },
    "fr": {
        "headline": "Sélectionnés pour vous",
        "subheadline": "Quelques favoris de la boutique, choisis d'après ce que vous avez consulté.",
        "banner_text": "Découvrez ce qui plaît en ce moment.",
    },
    "de": {
        "headline": "Für Sie ausgewählt",
        "subheadline": "Ein paar Favoriten aus dem Shop, passend zu dem, was Sie sich angesehen haben.",
        "banner_text": "Entdecken Sie, was gerade beliebt ist.",
    },
    "it": {
        "headline": "Scelti per te",
        "subheadline": "Alcuni preferiti del negozio, scelti in base a ciò che hai guardato.",
        "banner_text": "Scopri cosa va di più in questo momento.",
    },
    "pt": {
        "headline": "Escolhidos para si",
        "subheadline": "Alguns favoritos da loja, escolhidos a partir do que tem visto.",
        "banner_text": "Veja o que está a ser mais procurado agora.",
    },
    "pt-br": {
        "headline": "Escolhidos para você",
        "subheadline": "Alguns favoritos da loja, escolhidos a partir do que você andou vendo.",
        "banner_text": "Veja o que está em alta agora.",
    },
    "nl": {
        "headline": "Voor jou gekozen",
        "subheadline": "Een paar favorieten uit de winkel, gekozen op basis van wat je hebt bekeken.",
        "banner_text": "Bekijk wat nu populair is.",
    },
}
log = get_logger("pipelines.personalize")
_SNAKE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass
class Published:
    key: str
    shopper_id: str
    body: dict[str, Any]
    meta: dict[str, Any]
    # miss: this request's generation; hit: an earlier one; joined: one in flight when it asked;
    # fallback: none in time.
    cohort_cache: str = "miss"
    published_at: float = 0.0

    @property
    def cost_usd(self) -> str:
        return str(self.meta["cost_usd"])


def warm_up(svc: Services) -> None:
    """Do at boot what the first request would pay for: tiktoken's encoding, schema builds and,
    through litellm, ~200 ms of lazy imports; on the first shopper they would eat the deadline."""
    prompt = svc.runtime.prompts.get(PersonalizerAgent.name)
    model = prompt.meta.model
    messages = prompt.render(PersonalizerAgent(svc.runtime).variables({}, []))
    count_messages(messages, model)
    response_format_for(prompt.output_model)
    svc.runtime.gateway.warm_up(model, messages)


async def candidate_catalog(svc: Services, store: str, ctx: ShopperContext) -> Catalog:
    """The payload's candidates, else the store's catalog snapshot; only products shoppers may see.

    A payload candidate the store's snapshot knows as a draft (archived, unpublished, sold out)
    is dropped too: the storefront may send a stale list.
    """
    catalog = await snapshots.get(svc.store, store, svc.settings.catalog_snapshot_ttl_s)
    if ctx.candidates:
        hidden = catalog.hidden if catalog is not None else frozenset()
        return Catalog.of(ctx.candidates, hidden=hidden) if hidden else Catalog.of(ctx.candidates)
    if catalog is None or not catalog.products:
        why = (
            f"its catalog has no product shoppers may see ({len(catalog.hidden)} drafts, archived, "
            "unpublished or sold out)"
            if catalog is not None and catalog.hidden
            else f"it has no catalog snapshot ({catalog_snapshot_key(store)})"
        )
        raise InvalidInput(
            f"no candidates for store {store!r}: {why}; send context.candidates, or load the catalog with "
            f"`wandstore-agents catalog upload {store} FILE` (PUT /v1/stores/{store}/catalog) or "
            f"`catalog sync {store}`"
        )
    return catalog


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def _within(
    svc: Services, store: str, digest: str, compute: Any, *, deadline: float, ttl_s: int
) -> tuple[Cached | None, str | None]:
    """The cohort's generation by `deadline` (epoch s), or (None, why not)."""
    try:
        cached = await svc.results.get(CACHE, digest, store=store)
    except BrokerUnavailable as exc:
        return None, _reason(exc)
    if cached is not None:
        return Cached(cached, hit=True), None
    task = asyncio.ensure_future(svc.results.get_or_compute(CACHE, digest, compute, store=store, ttl_s=ttl_s))
    remaining = deadline - time.time() - PUBLISH_RESERVE_S
    try:
        # Shielded: when the deadline passes, the generation goes on and fills the cohort's cache.
        return await asyncio.wait_for(asyncio.shield(task), timeout=max(remaining, 0.0)), None
    except TimeoutError:
        keep(task, "personalization_late_generation")
        return None, "deadline"
    except InvalidInput:
        raise
    except WandstoreError as exc:
        return None, _reason(exc)


def _store_locale(svc: Services, store: str) -> str | None:
    """The store record's locale (for a shopper who sent none); None when unknown or unreadable."""
    try:
        record = StoreRegistry(svc.redis).get(store)
    except BrokerUnavailable:
        return None
    return record.locale if record else None


def _reason(exc: Exception) -> str:
    """A short code for `meta.fallback_reason` (the details may hold model text: logs only)."""
    log.warning("personalization_generation_failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
    if isinstance(exc, NoSlot):  # the model's rate budget had no slot before the deadline
        return "rate_limited"
    # Named by the project's public error (adapters/errors.py), not a subclass of it: the codes
    # are a contract (a provider down is still `transient_gateway_error`).
    public = next((c for c in type(exc).__mro__ if c.__module__ == "adapters.errors"), type(exc))
    return _SNAKE.sub("_", public.__name__).lower()


async def _fallback(
    svc: Services,
    *,
    store: str,
    last_key: str,
    catalog: Catalog,
    picks: list[Any],
    prompt: Prompt,
    digest: str,
    job_id: str,
    extra: dict[str, Any],
    locale: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cohort's last good result (ids still in the catalog), else the default ordering
    with the default words in `locale`."""
    try:
        last = await svc.results.get(LAST_GOOD, last_key, store=store)
    except BrokerUnavailable:
        last = None
    if last is not None:
        ids = [pid for pid in last["body"]["ranked_product_ids"] if pid in catalog.by_id]
        if ids:
            meta = served_from_cache(last["meta"], job_id=job_id, extra=extra)
            return {**last["body"], "ranked_product_ids": ids}, {**meta, "fallback": "last_good"}
    body = {
        **pick(DEFAULT_TEXT, locale),
        "ranked_product_ids": default_ranking(picks),
        "reason_codes": ["default_ordering"],
    }
    meta = {
        "pipeline": PIPELINE,
        "prompt": prompt.agent,
        "prompt_version": prompt.version,
        "prompt_ref": prompt.ref,
        "model": None,
        "generated_at": now_iso(),
        "input_hash": digest,
        "cost_usd": "0",
        "served": Served.FALLBACK.value,
        "tokens": {"prompt": 0, "cached_prompt": 0, "completion": 0},
        "calls": 0,
        "job_id": job_id,
        **extra,
        "fallback": "default",
    }
    return body, meta


async def personalize_shopper(
    svc: Services,
    store: str,
    shopper_id: Any,
    context: Any = None,
    *,
    job_id: str = "",
    enqueued_at: float | None = None,
) -> Published:
    """Personalize one shopper's storefront and publish it; bad input writes nothing."""
    began = time.time()
    check_store(store)
    shopper = check_id(shopper_id, "shopper id")
    ctx = parse_context(context)
    settings = svc.settings
    deadline_ms = ctx.deadline_ms or settings.personalization_deadline_ms
    # The caller's clock starts when it asked (enqueue), not when a worker got round to it.
    start = min(enqueued_at, began) if enqueued_at else began
    deadline = start + deadline_ms / 1000

    catalog = await candidate_catalog(svc, store, ctx)
    cohort = cohort_of(ctx, catalog)
    picks = shortlist(catalog, cohort)
    agent = PersonalizerAgent(svc.runtime)
    # The shopper id is for routing (sticky prompt versions); it never reaches a prompt.
    # The interactive lane's share of the model's rate budget, waited for until the deadline at most.
    call_ctx = CallContext(
        store=store,
        pipeline=PIPELINE,
        job_id=job_id,
        extra={"shopper_id": shopper},
        lane="interactive",
        deadline=deadline,
    )
    prompt = await agent.prompt_for(call_ctx.for_agent(agent.name))

    def inputs() -> tuple[dict[str, Any], str, str]:
        variables = agent.variables(cohort.signals(), [c.prompt_row for c in picks])
        # Everything that decides the generation, nothing that is the shopper's own: one key per cohort.
        digest = cache_key(CACHE, store, prompt.ref, prompt.meta.model, variables)
        return variables, digest, cache_key(LAST_GOOD, store, cohort.signals())

    # The same for every shopper of the cohort while the catalog lasts.
    variables, digest, last_key = catalog.remember(("inputs", store, cohort, prompt.ref), inputs)
    shared = {"store": store, "cohort": cohort.key, "locale": cohort.locale}
    ttl_s = settings.personalization_ttl_s

    async def compute() -> dict[str, Any]:
        run = await agent.run(call_ctx, variables, version=prompt.version)
        meta = build_meta(pipeline=PIPELINE, run=run, digest=digest, job_id=job_id, extra=shared)
        value = {
            "body": run.output.model_dump(),
            "meta": meta,
            "list_cost_nano": list_cost_nano(run.records, settings.price_overrides),
            "expires_at": time.time() + ttl_s,
        }
        await svc.results.put(LAST_GOOD, last_key, value, ttl_s=LAST_GOOD_TTL_S, store=store)
        return value

    got: Cached | None = None
    if len(picks) < MIN_RANKED:
        reason: str | None = "too_few_candidates"  # nothing for a model to choose between
    else:
        got, reason = await _within(svc, store, digest, compute, deadline=deadline, ttl_s=ttl_s)

    # `pipeline` too: a cached generation or last good result written before the names were one.
    extra = {**shared, "pipeline": PIPELINE, "shopper_id": shopper}
    cohort_cache = "fallback"
    if got is not None:
        finished = float(got.value["expires_at"]) - ttl_s
        cohort_cache = ("joined" if finished >= start else "hit") if got.hit else "miss"
        body = got.value["body"]
        meta = {**got.value["meta"], **extra}
        if got.hit:
            meta = served_from_cache(meta, job_id=job_id, extra=extra)
        expires_at = float(got.value["expires_at"])
    else:
        body, meta = await _fallback(
            svc,
            store=store,
            last_key=last_key,
            catalog=catalog,
            picks=picks,
            prompt=prompt,
            digest=digest,
            job_id=job_id,
            extra=extra,
            locale=ctx.locale or _store_locale(svc, store),
        )
        meta["served"] = Served.FALLBACK.value
        expires_at = time.time() + settings.personalization_fallback_ttl_s

    ranked, touched = apply_touches(list(body["ranked_product_ids"]), ctx, catalog.by_id)
    codes = list(body.get("reason_codes") or [])
    if touched and "recently_viewed" not in codes:
        codes = [*codes[:4], "recently_viewed"]
    doc = {**body, "ranked_product_ids": ranked, "reason_codes": codes, "expires_at": _iso(expires_at)}
    meta.setdefault("fallback", None)
    meta["fallback_reason"] = reason if got is None else None
    meta["deadline_ms"] = deadline_ms
    meta["elapsed_ms"] = round((time.time() - start) * 1000)
    key = personalization_key(store, shopper)
    # Off the event loop: an R2 PUT must not stall the other requests this process is serving.
    await asyncio.to_thread(publish, svc.store, key, doc, meta)
    published_at = time.time()

    if got is not None and got.hit:
        await record_result_cache_hit(
            svc.runtime.sink,
            call_ctx.for_agent(agent.name),
            prompt_ref=prompt.ref,
            model=prompt.meta.model,
            key=digest,
            saved_nano=int(got.value.get("list_cost_nano", 0)),
        )
    log.info(
        "personalization_published",
        store=store,
        key=key,
        cohort=cohort.key,
        served=meta["served"],
        cohort_cache=cohort_cache,
        fallback_reason=meta["fallback_reason"],
        elapsed_ms=meta["elapsed_ms"],
    )
    published = Published(
        key=key, shopper_id=shopper, body=doc, meta=meta, cohort_cache=cohort_cache, published_at=published_at
    )
    if ctx.callback_url:
        spawn(_callback(svc, published, ctx.callback_url, job_id), "personalization_callback")
    return published


async def _callback(svc: Services, published: Published, url: str, job_id: str) -> None:
    """POST the published document to the storefront in the webhooks' envelope: one receiver handles both."""
    meta = published.meta
    job = {
        "id": job_id,
        "store": meta["store"],
        "pipeline": PIPELINE,
        "status": "done",
        "output_keys": [published.key],
        "cost_usd": meta["cost_usd"],
        "served": meta["served"],
        "finished_at": time.time(),
    }
    payload = envelope(job, shopper_id=published.shopper_id, output={**published.body, "meta": meta})
    await deliver_callback(
        svc.redis, svc.settings, url, payload, job_id=job_id, delivery_id=job_id or published.key
    )


__all__ = ["PIPELINE", "Published", "personalize_shopper"]
