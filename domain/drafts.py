"""Drafts: what a generation proposes before it goes live, and the rules that decide whether it may.

Pure rules only (no I/O): draft ids and keys, the deterministic checks of product copy,
the publishing policy (`auto` goes live when every check passes and, for themes, the critic
approved; `review` waits for a person), field-by-field diffs against what is live and what
the merchant wrote, and the content hash that tells whether a product changed in Shopify.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import uuid
from collections.abc import Iterable
from typing import Any

from adapters.errors import InvalidInput
from domain.catalog import shopify_time
from domain.keys import check_store
from domain.sanitize import clean_html, html_to_text, is_safe, plain_text

KINDS = ("copy", "theme")
STATUSES = ("pending", "approved", "rejected", "live")
# `queued` while a push waits for the worker; the others are where a push ends.
SHOPIFY_STATUSES = ("off", "queued", "pushed", "conflict", "failed")
POLICIES = ("auto", "review")
DEFAULT_POLICY = {"copy": "auto", "theme": "review"}
DRAFT_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_NAMESPACE = uuid.UUID("6f1d3c1e-54a4-4c4b-9d55-9b8f0b7a2d10")

# The copy fields a merchant may edit on approval, and the limits the copy schema sets.
COPY_TEXT_LIMITS = {"title": 70, "seo_title": 60, "meta_description": 160, "description_html": 5000}
COPY_FIELDS = ("title", "description_html", "bullets", "seo_title", "meta_description", "image_alts")
MAX_REASON = 1000


def draft_id_for(store: str, kind: str, seed: str | None) -> str:
    """The id of the draft a job (or build) writes: one seed, one id (a redelivery writes it once)."""
    if not seed:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_NAMESPACE, f"{check_store(store)}/{kind}/{seed}"))


def check_draft_id(value: Any) -> str:
    if not isinstance(value, str) or not DRAFT_ID_RE.fullmatch(value):
        raise InvalidInput(f"draft id {str(value)[:60]!r} is invalid: it must be a lower-case UUID")
    return value


def check_kind(value: Any) -> str:
    if value not in KINDS:
        raise InvalidInput(f"kind {str(value)[:20]!r} is invalid: it must be one of {', '.join(KINDS)}")
    return str(value)


def check_status(value: Any) -> str:
    if value not in STATUSES:
        raise InvalidInput(f"status {str(value)[:20]!r} is invalid: it must be one of {', '.join(STATUSES)}")
    return str(value)


def draft_key(store: str, draft_id: str) -> str:
    """Where a draft's body lives: beside the store's other outputs, never at a key a storefront reads."""
    return f"stores/{check_store(store)}/drafts/{check_draft_id(draft_id)}.json"


def policy_of(publish: dict[str, str] | None, kind: str) -> str:
    """The store's policy for `kind`; a store with no record gets the defaults (copy auto, themes review)."""
    value = (publish or {}).get(kind) or DEFAULT_POLICY[kind]
    return value if value in POLICIES else DEFAULT_POLICY[kind]


def check(name: str, passed: bool, detail: str = "") -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "detail": detail}


def checks_pass(checks: Iterable[dict[str, Any]]) -> bool:
    return all(c.get("passed") for c in checks)


def goes_live(policy: str, checks: list[dict[str, Any]], critic_approved: bool | None = None) -> bool:
    """`auto` and every deterministic check passed (and, where a critic judged, it approved)."""
    if policy != "auto" or not checks_pass(checks):
        return False
    return critic_approved is not False


def copy_checks(body: dict[str, Any], image_ids: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Deterministic checks of product copy: lengths, nothing empty or active, every image described."""
    out = []
    for name, limit in COPY_TEXT_LIMITS.items():
        text = str(body.get(name) or "")
        visible = html_to_text(text) if name == "description_html" else text
        if not visible.strip():
            out.append(check(f"{name}_length", False, f"{name} is empty"))
        else:
            ok = len(text) <= limit
            out.append(check(f"{name}_length", ok, f"{len(text)} of at most {limit} characters"))
    bullets = body.get("bullets") or []
    out.append(check("bullets", 3 <= len(bullets) <= 6, f"{len(bullets)} bullets (3 to 6)"))
    texts = [str(body.get(n) or "") for n in COPY_TEXT_LIMITS] + [str(b) for b in bullets]
    texts += [str(a.get("alt") or "") for a in body.get("image_alts") or []]
    unsafe = [t[:40] for t in texts if not is_safe(t)]
    out.append(
        check("safe_markup", not unsafe, "nothing active" if not unsafe else f"active text: {unsafe[0]!r}")
    )
    described = {str(a.get("image_id")) for a in body.get("image_alts") or [] if a.get("alt")}
    missing = [i for i in image_ids if str(i) not in described]
    out.append(
        check("image_alts", not missing, "every image described" if not missing else f"no alt: {missing[:3]}")
    )
    return out


# --- diffs -------------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1)


def field_diff(name: str, before: Any, after: Any) -> dict[str, Any]:
    """One field: before, after, whether it changed, and a line diff when it is longer text."""
    a, b = _as_text(before), _as_text(after)
    row: dict[str, Any] = {"field": name, "before": before, "after": after, "changed": a != b}
    if a != b and ("\n" in a or "\n" in b or len(a) > 80 or len(b) > 80):
        row["lines"] = list(
            difflib.unified_diff(a.splitlines(), b.splitlines(), "before", "after", lineterm="", n=1)
        )[2:]
    return row


def diff_fields(
    before: dict[str, Any] | None, after: dict[str, Any], fields: Iterable[str]
) -> list[dict[str, Any]]:
    old = before or {}
    return [field_diff(f, old.get(f), after.get(f)) for f in fields]


def merchant_fields(product: dict[str, Any]) -> dict[str, Any]:
    """The merchant's own text of a catalog product, under the copy's field names.

    Sanitized as the storefront would show it: a draft is a stored document that a review page
    renders, and catalog text may carry anything (the diff compares what a shopper would see).
    """
    images = product.get("images") or []
    alts = [
        {"image_id": str(i.get("id")), "alt": plain_text(str(i["alt"])) if i.get("alt") else i.get("alt")}
        for i in images
        if i.get("id")
    ]
    title = product.get("title")
    return {
        "title": plain_text(str(title)) if title else title,
        "description_html": clean_html(str(product.get("body_html") or "")),
        "image_alts": alts,
    }


def inert_product(value: Any, key: str = "") -> Any:
    """A catalog product with every string as the storefront would show it (for a draft's source).

    Drafts are stored documents a review page renders: the merchant's raw text (which may carry
    anything) is kept as plain text, and the description as sanitized HTML.
    """
    if isinstance(value, str):
        return clean_html(value) if key == "body_html" else plain_text(value)
    if isinstance(value, dict):
        return {k: inert_product(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [inert_product(v, key) for v in value]
    return value


def copy_diff(live: dict[str, Any] | None, draft: dict[str, Any], merchant: dict[str, Any]) -> dict[str, Any]:
    """The draft against the copy live now (None: nothing live yet) and the merchant's catalog text."""
    return {
        "live": diff_fields(live, draft, COPY_FIELDS) if live is not None else None,
        "catalog": diff_fields(merchant, draft, ("title", "description_html", "image_alts")),
    }


def present_copy(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored copy draft as its readers see it: its diff worked out.

    A generation stores what was live before it (`live_before`) and its source product, made
    inert (`inert_product`); the diffs are built here, when someone reads the draft, not on
    every generation (most copy goes live by policy and is never read). The sanitizers give
    back what they are given when it is clean already, so the catalog diff of the inert product
    is the raw product's. A draft stored with its `diff` already is returned as it was.
    """
    if "diff" in doc:
        return doc
    product = (doc.get("source") or {}).get("product") or {}
    doc["diff"] = copy_diff(doc.pop("live_before", None), doc["body"], merchant_fields(product))
    return doc


def theme_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """What a merchant compares between two themes: name, palette, fonts, sections and their headlines."""
    tokens = doc.get("tokens") or doc.get("design") or {}
    sections = doc.get("sections") or []
    return {
        "name": (doc.get("brand") or {}).get("name") or doc.get("name"),
        "palette": tokens.get("palette"),
        "fonts": tokens.get("fonts") or tokens.get("typography"),
        "sections": [s.get("type") for s in sections if isinstance(s, dict)],
        "headlines": {
            s.get("type"): (s.get("copy") or {}).get("headline")
            for s in sections
            if isinstance(s, dict) and isinstance(s.get("copy"), dict)
        },
    }


def theme_diff(live: dict[str, Any] | None, draft: dict[str, Any]) -> dict[str, Any]:
    after = theme_summary(draft)
    if live is None:
        return {"live": None}
    return {"live": diff_fields(theme_summary(live), after, after)}


# --- Shopify: did the merchant change the product since the draft was made? ----------------


def content_hash(title: Any, description_html: Any) -> str:
    """A hash of the product text a merchant edits in Shopify (title and description)."""
    canonical = json.dumps([str(title or ""), str(description_html or "")], ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def changed_since(source: dict[str, Any], fresh: dict[str, Any], pushed_hashes: Iterable[str] = ()) -> bool:
    """True when Shopify's product is not what the draft was made from (nor what we pushed since).

    The same `updatedAt` means untouched. Otherwise the text decides: a product whose title
    and description still hash to the draft's source (or to what this service pushed) was
    changed elsewhere (a price, a tag), not in what the draft would overwrite.
    """
    made, now_at = shopify_time(source.get("updated_at")), shopify_time(fresh.get("updated_at"))
    if made is not None and made == now_at:
        return False
    now = content_hash(fresh.get("title"), fresh.get("description_html"))
    return now != source.get("hash") and now not in set(pushed_hashes)
