"""From draft to live: propose (every generation), then approve or reject (a person, or the policy).

`propose_copy` and `propose_theme` write a draft, with its checks and its diff against
what is live (and, for copy, against the merchant's own catalog text), then apply the
store's policy: `auto` publishes at once when every check passes (and, for a theme, the
critic approved); anything else waits as `pending`. `approve` publishes a pending draft,
with the merchant's edits validated and sanitized exactly like model output; `reject`
keeps it off the storefront. Every decision is recorded with the token, the time and
what changed; edits and rejections become feedback (`pipelines/drafts_feedback.py`), and
approved copy of a store with `shopify_push` is queued for Shopify (`drafts_push.py`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import ValidationError

from adapters.errors import InvalidInput, NotFound
from adapters.logs import get_logger
from adapters.store import ObjectStore
from adapters.stores import StoreRegistry
from agents.schemas.product_copy import ProductCopy
from agents.shopify import describe_errors
from domain import drafts as rules
from domain.keys import product_copy_key, theme_build_prefix
from domain.sanitize import clean_html, plain_text
from pipelines.drafts import DraftConflict, Drafts, target_of
from pipelines.publish import now_iso, publish
from pipelines.theme_publish import MANIFEST, activate, read_pointer

log = get_logger("pipelines.drafts")
SYSTEM = "policy"  # who decided when the store's policy did


@dataclass
class Proposed:
    draft_id: str
    live: bool
    push: bool = False  # approved copy waits for its Shopify push
    pointer: dict[str, Any] | None = None  # a theme made live: the new pointer


def _store_flags(client: redis.Redis, store: str) -> tuple[dict[str, str] | None, bool]:
    record = StoreRegistry(client).get(store)
    if record is None:
        return None, False
    return record.publish.as_dict(), record.shopify_push


def _live_copy(objects: ObjectStore, store: str, product_id: str) -> dict[str, Any] | None:
    try:
        doc = objects.get(product_copy_key(store, product_id)).json()
    except NotFound:
        return None
    doc.pop("meta", None)
    return dict(doc)


def _decision(action: str, by: str, **more: Any) -> dict[str, Any]:
    return {"action": action, "by": by, "at": now_iso(), **{k: v for k, v in more.items() if v is not None}}


# --- proposing ----------------------------------------------------------------------------


def propose_copy(
    client: redis.Redis,
    objects: ObjectStore,
    *,
    store: str,
    product: dict[str, Any],
    body: dict[str, Any],
    meta: dict[str, Any],
    image_ids: list[str],
    job_id: str = "",
    log_ids: list[str] | None = None,
) -> Proposed:
    """Write the copy draft of one product; publish it now if the store's policy says so."""
    drafts = Drafts(client, objects)
    product_id = str(product["id"])
    draft_id = rules.draft_id_for(store, "copy", job_id or None)
    publish_policy, shopify_push = _store_flags(client, store)
    policy = rules.policy_of(publish_policy, "copy")
    checks = rules.copy_checks(body, image_ids)
    draft = {
        "id": draft_id,
        "store": store,
        "kind": "copy",
        "product_id": product_id,
        "job_id": job_id,
        "created_at": now_iso(),
        "created_ts": time.time(),
        "policy": policy,
        "auto": rules.goes_live(policy, checks),
        "body": body,
        "checks": checks,
        # What was live before this draft; its diff is worked out when someone reads it
        # (domain/drafts.present_copy), not on every generation.
        "live_before": _live_copy(objects, store, product_id),
        "meta": {**meta, "gateway_log_ids": list(log_ids or [])},
        # What the draft was made from: a push refuses when Shopify's product moved on since.
        "source": {
            "updated_at": product.get("updated_at"),
            "hash": rules.content_hash(product.get("title"), product.get("body_html")),
            # The eval case a rejection or an edit becomes. Inert as stored: the draft is an object
            # in the themes bucket, and catalog text may carry anything.
            "product": rules.inert_product(product),
        },
        "image_ids": image_ids,
        "shopify": {"status": "off"},
    }
    # One script: the row, the index, the product's newest draft, and the states read next.
    target = target_of("copy", product_id)
    made = drafts.propose(draft, target)
    if made.older is not None:
        _supersede(drafts, store, made.older, draft_id)
    if made.status == "live":  # a redelivered job whose draft went live already
        return Proposed(draft_id, True)
    if made.status != "pending" or not draft["auto"]:
        log.info("copy_drafted", store=store, product_id=product_id, draft_id=draft_id, policy=policy)
        return Proposed(draft_id, False)
    publish(objects, product_copy_key(store, product_id), body, {**meta, "draft_id": draft_id})
    try:
        drafts.move(
            store,
            draft_id,
            allowed=("pending",),
            to="live",
            decision=_decision(
                "auto", SYSTEM, note="every check passed; the store publishes copy automatically"
            ),
            live_target=target,
            fields={"shopify": _push_queued()} if shopify_push else None,  # as `_queue_push` does
        )
    except DraftConflict:
        return Proposed(draft_id, False)  # a person decided meanwhile
    return Proposed(draft_id, True, push=shopify_push)


def _supersede(drafts: Drafts, store: str, older: str, draft_id: str) -> None:
    """An older copy draft of the same product still waiting is set aside: the newer one is reviewed.

    `Drafts.propose` names `older` only when it was pending and not `auto` (on its way live
    itself: concurrent jobs); the move re-checks that it is still pending.
    """
    with contextlib.suppress(DraftConflict, NotFound):  # decided meanwhile, or gone
        drafts.move(
            store,
            older,
            allowed=("pending",),
            to="rejected",
            decision=_decision("supersede", SYSTEM, reason=f"superseded by the newer draft {draft_id}"),
        )


def theme_checks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """A build's deterministic checks, on what would be published.

    A step whose last answer still failed a check was fixed deterministically before
    publishing (the fix is in `theme.json`): it passes, saying so. What no fix-up can make
    pass holds the draft: the palette's contrast, and its hues against the colour hint.
    """
    out = []
    found = doc.get("checks") or {}
    for step, rounds in sorted(found.get("rounds", {}).items()):
        last = rounds[-1]["problems"] if rounds else []
        out.append(
            rules.check(step, True, "passed" if not last else f"fixed deterministically: {last[0]}"[:300])
        )
    hues = (found.get("palette_hint") or {}).get("hues") or []
    straying = [h for h in hues if not h.get("passes", True)]
    if hues:
        detail = (
            "primary and accent follow the colour hint"
            if not straying
            else f"palette.{straying[0]['role']} is {straying[0]['distance']}° from the hint's colours"
        )
        out.append(rules.check("palette_hint", not straying, detail))
    contrast = found.get("contrast") or []
    failing = [c for c in contrast if not c.get("passes")]
    out.append(
        rules.check(
            "contrast",
            not failing,
            "every pair meets WCAG 2.1 AA" if not failing else f"{failing[0]['fg']} on {failing[0]['bg']}",
        )
    )
    return out


def propose_theme(
    client: redis.Redis,
    objects: ObjectStore,
    *,
    store: str,
    build_id: str,
    doc: dict[str, Any],
    job_id: str = "",
    log_ids: list[str] | None = None,
) -> Proposed:
    """Write a published build's draft; point the storefront at it now only if the policy allows."""
    drafts = Drafts(client, objects)
    draft_id = rules.draft_id_for(store, "theme", build_id)
    publish_policy, _ = _store_flags(client, store)
    policy = rules.policy_of(publish_policy, "theme")
    checks = theme_checks(doc)
    approved = bool((doc.get("review") or {}).get("approved"))
    current, _ = read_pointer(objects, store)
    live_doc = None
    if current and current.get("theme"):
        try:
            live_doc = objects.get(str(current["theme"])).json()
        except NotFound:
            live_doc = None
    prefix = theme_build_prefix(store, build_id)
    review = doc.get("review") or {}
    draft = {
        "id": draft_id,
        "store": store,
        "kind": "theme",
        "build_id": build_id,
        "job_id": job_id,
        "created_at": now_iso(),
        "created_ts": time.time(),
        "policy": policy,
        "body": {
            "theme_key": prefix + MANIFEST,
            "preview_key": prefix + "preview.html",
            "critic": {k: review.get(k) for k in ("approved", "rounds", "summary", "open_notes")},
            "brief": doc.get("brief"),
        },
        "checks": [*checks, rules.check("critic", approved, str(review.get("summary") or "")[:300])],
        "diff": rules.theme_diff(live_doc, doc),
        "meta": {**(doc.get("meta") or {}), "gateway_log_ids": list(log_ids or [])},
    }
    drafts.create(draft)
    state = drafts.state(store, draft_id)
    if state["status"] == "live":
        return Proposed(draft_id, True, pointer=current)
    if state["status"] != "pending" or not rules.goes_live(policy, checks, approved):
        log.info(
            "theme_drafted", store=store, build_id=build_id, draft_id=draft_id, policy=policy, critic=approved
        )
        return Proposed(draft_id, False)
    pointer = activate(objects, store, build_id, reason="auto")
    drafts.move(
        store,
        draft_id,
        allowed=("pending",),
        to="live",
        decision=_decision(
            "auto", SYSTEM, note="checks passed and the critic approved; the store's policy is auto"
        ),
        live_target="theme",
    )
    return Proposed(draft_id, True, pointer=pointer)


# --- deciding -----------------------------------------------------------------------------


def sanitize_edits(body: dict[str, Any], edits: dict[str, Any], image_ids: list[str]) -> dict[str, Any]:
    """The copy with a merchant's edits, validated by the copy schema and sanitized like model output."""
    unknown = sorted(set(edits) - set(rules.COPY_FIELDS))
    if unknown:
        raise InvalidInput(
            f"edits: unknown field(s) {', '.join(unknown)}; editable: {', '.join(rules.COPY_FIELDS)}"
        )
    merged = {**body, **edits}
    try:
        parsed = ProductCopy.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput("edits: " + describe_errors(exc)) from None
    alts = {a.image_id: plain_text(a.alt, 125) for a in parsed.image_alts}
    cleaned: dict[str, Any] = {
        "title": plain_text(parsed.title, 70),
        "description_html": clean_html(parsed.description_html),
        "bullets": [b for b in (plain_text(x, 160) for x in parsed.bullets) if b],
        "seo_title": plain_text(parsed.seo_title, 60),
        "meta_description": plain_text(parsed.meta_description, 160),
        "image_alts": [
            {"image_id": i, "alt": alts.get(i) or plain_text(f"{parsed.title}, image {n}", 125)}
            for n, i in enumerate(image_ids, start=1)
        ]
        if image_ids
        else [a.model_dump() for a in parsed.image_alts],
    }
    empty = [k for k in ("title", "seo_title", "meta_description") if not cleaned[k]]
    if not plain_text(cleaned["description_html"]):
        empty.append("description_html")
    if len(cleaned["bullets"]) < 3:
        empty.append("bullets (fewer than 3 left)")
    if empty:
        raise InvalidInput(f"edits: empty after removing disallowed markup: {', '.join(empty)}")
    return cleaned


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"field": row["field"], "before": row["before"], "after": row["after"]}
        for row in rules.diff_fields(before, after, rules.COPY_FIELDS)
        if row["changed"]
    ]


def approve(
    client: redis.Redis,
    objects: ObjectStore,
    store: str,
    draft_id: str,
    *,
    by: str,
    edits: dict[str, Any] | None = None,
    note: str | None = None,
    to_gateway: bool = False,
) -> dict[str, Any]:
    """Publish a pending draft (copy with the merchant's edits, if any); returns the draft after."""
    drafts = Drafts(client, objects)
    draft = drafts.get(store, draft_id)
    if draft["status"] != "pending":
        raise DraftConflict(
            draft["status"], f"draft {draft_id} is {draft['status']}; only a pending draft can be approved"
        )
    if draft["kind"] == "theme":
        if edits:
            raise InvalidInput(
                "edits: a theme draft takes no edits; reject it and ask for a new build instead"
            )
        activate(objects, store, draft["build_id"], reason="approved")
        drafts.move(
            store,
            draft_id,
            allowed=("pending",),
            to="live",
            decision=_decision("approve", by, note=note),
            live_target="theme",
        )
        return drafts.get(store, draft_id)
    _, shopify_push = _store_flags(client, store)
    final = sanitize_edits(draft["body"], edits, draft.get("image_ids") or []) if edits else draft["body"]
    changes = _changes(draft["body"], final)
    meta = {k: v for k, v in draft["meta"].items() if k != "gateway_log_ids"}
    publish(
        objects,
        product_copy_key(store, draft["product_id"]),
        final,
        {**meta, "draft_id": draft_id, "edited": bool(changes)},
    )
    drafts.move(
        store,
        draft_id,
        allowed=("pending",),
        to="live",
        decision=_decision("approve", by, note=note, changes=changes or None),
        live_target=target_of("copy", draft["product_id"]),
        final=final if changes else None,
    )
    if changes:
        from pipelines.drafts_feedback import record_feedback

        record_feedback(
            client, drafts, draft, action="edit", by=by, reason=note, changes=changes, to_gateway=to_gateway
        )
    _queue_push(drafts, store, draft_id, shopify_push)
    log.info("draft_approved", store=store, draft_id=draft_id, kind="copy", edited=bool(changes), by=by)
    return drafts.get(store, draft_id)


def reject(
    client: redis.Redis,
    objects: ObjectStore,
    store: str,
    draft_id: str,
    *,
    by: str,
    reason: str,
    to_gateway: bool = False,
) -> dict[str, Any]:
    """Keep a pending draft off the storefront, with the reason (feedback for the prompt that made it)."""
    reason = plain_text(reason or "", rules.MAX_REASON)
    if not reason:
        raise InvalidInput("reason: say why the draft is rejected (it becomes feedback for the prompt)")
    drafts = Drafts(client, objects)
    draft = drafts.get(store, draft_id)
    drafts.move(
        store, draft_id, allowed=("pending",), to="rejected", decision=_decision("reject", by, reason=reason)
    )
    from pipelines.drafts_feedback import record_feedback

    record_feedback(
        client, drafts, draft, action="reject", by=by, reason=reason, changes=None, to_gateway=to_gateway
    )
    log.info("draft_rejected", store=store, draft_id=draft_id, kind=draft["kind"], by=by)
    return drafts.get(store, draft_id)


def approve_many(
    client: redis.Redis, objects: ObjectStore, store: str, draft_ids: list[str], *, by: str
) -> dict[str, Any]:
    """Approve every pending draft of `draft_ids` (a batch's); the others are counted, not touched."""
    approved, skipped, failed = [], [], []
    drafts = Drafts(client, objects)
    for draft_id in draft_ids:
        try:
            state = drafts.state(store, draft_id)
        except NotFound:
            continue  # a job that failed (or is still running) left no draft
        if state["status"] != "pending":
            skipped.append({"id": draft_id, "status": state["status"]})
            continue
        try:
            approve(client, objects, store, draft_id, by=by, note="batch approval")
            approved.append(draft_id)
        except DraftConflict as exc:
            skipped.append({"id": draft_id, "status": exc.status})
        except InvalidInput as exc:
            failed.append({"id": draft_id, "reason": str(exc)})
    return {"approved": approved, "skipped": skipped, "failed": failed}


def activate_reviewed(
    client: redis.Redis, objects: ObjectStore, store: str, build_id: str, *, by: str, reason: str
) -> dict[str, Any]:
    """`themes activate` (a rollback or roll forward) of a build that passed review, recorded.

    A build whose draft is pending or rejected goes live by approval only; a build from
    before drafts existed has none and may be activated as before.
    """
    drafts = Drafts(client, objects)
    draft_id = rules.draft_id_for(store, "theme", build_id)
    try:
        state: dict[str, Any] | None = drafts.state(store, draft_id)
    except NotFound:
        state = None
    if state is not None and state["status"] in ("pending", "rejected"):
        raise DraftConflict(
            state["status"],
            f"build {build_id} is {state['status']}: a theme goes live when its draft is approved "
            f"(POST /v1/stores/{store}/drafts/{draft_id}/approve, or `wandstore-agents drafts approve "
            f"{store} {draft_id}`)",
        )
    pointer = activate(objects, store, build_id, reason=reason)
    if state is not None:
        drafts.move(
            store,
            draft_id,
            allowed=("approved", "live"),
            to="live",
            decision=_decision("activate", by, note=reason),
            live_target="theme",
        )
    return pointer


def _queue_push(drafts: Drafts, store: str, draft_id: str, enabled: bool) -> bool:
    """Mark approved copy as waiting for its Shopify push (the caller enqueues `draft_followup`)."""
    if not enabled:
        return False
    drafts.set_fields(store, draft_id, shopify=_push_queued())
    return True


def _push_queued() -> dict[str, Any]:
    return {"status": "queued", "queued_at": now_iso(), "attempts": 0}
