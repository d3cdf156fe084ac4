"""Shopper context, and its reduction to a cohort: the model sees cohorts, never individuals.

A cohort is what many shoppers share: segment, locale, device class, referrer class, the
top categories they looked at (bucketed into a sorted set) and whether their cart is
empty. Shoppers with one cohort share one generation through the result cache; what is
theirs alone (recently viewed products first) is applied by `apply_touches` afterwards.
Nothing personal (shopper id, email, name, raw URLs, user agents) survives the reduction.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.errors import InvalidInput
from agents.schemas.personalization import MAX_RANKED
from agents.shopify import describe_errors
from domain.keys import check_id
from domain.sanitize import plain_text
from pipelines.publish import input_hash

SEGMENT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
LOCALE_RE = re.compile(r"^[a-z]{2,3}([-_][a-z0-9]{2,8})?$")
CALLBACK_RE = re.compile(r"^https?://[^\s/?#@]+(/[^\s]*)?$")
_NOT_WORD = re.compile(r"[^\w&'-]+")
MAX_TOP_CATEGORIES = 2
MAX_PROMPT_CANDIDATES = 24
MAX_FEATURED = 12
MAX_VIEWED_FIRST = 4
MEMO_LIMIT = 4096
T = TypeVar("T")

_SEARCH = ("google.", "bing.", "duckduckgo.", "yahoo.", "ecosia.", "baidu.", "yandex.", "search.brave.")
_SOCIAL = (
    "facebook.",
    "fb.",
    "instagram.",
    "tiktok.",
    "pinterest.",
    "twitter.",
    "x.com",
    "t.co",
    "reddit.",
    "youtube.",
    "linkedin.",
    "snapchat.",
    "threads.net",
)
_EMAIL = ("mail.", "outlook.", "klaviyo.", "mailchimp.", "list-manage.")


class Candidate(BaseModel):
    """One product the personalizer may feature (a catalog snapshot row, or from the payload)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str
    title: str = Field(min_length=1, max_length=1000)
    product_type: str = Field(default="", max_length=255)
    price: str | None = Field(default=None, max_length=32)
    tags: list[str] = Field(default_factory=list, max_length=250)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> str:
        try:
            return check_id(value, "candidate id")
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    @field_validator("product_type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    # Cached: a snapshot's candidates live for many requests, and sanitizing is the costly part.
    @cached_property
    def category(self) -> str:
        """The product type, else its first tag, as a plain lower-case name ('top categories viewed')."""
        raw = self.product_type or (self.tags[0] if self.tags else "")
        return " ".join(_NOT_WORD.sub(" ", raw.lower()).split())[:40].strip()

    @cached_property
    def prompt_row(self) -> dict[str, Any]:
        """Plain facts for the prompt: short, no markup."""
        return {
            "id": self.id,
            "title": plain_text(self.title, 120),
            "product_type": plain_text(self.product_type, 40),
            "price": self.price,
            "tags": [t for t in (plain_text(x, 30) for x in self.tags[:3]) if t],
        }


class ShopperContext(BaseModel):
    """The `context` argument of `personalize` (DESIGN.md "Contracts")."""

    model_config = ConfigDict(extra="forbid")

    segment: str | None = Field(default=None, max_length=32)
    locale: str | None = Field(default=None, max_length=12)
    device: str | None = Field(default=None, max_length=512)
    referrer: str | None = Field(default=None, max_length=2048)
    viewed: list[str] = Field(default_factory=list, max_length=100)
    carted: list[str] = Field(default_factory=list, max_length=100)
    candidates: list[Candidate] | None = Field(default=None, max_length=500)
    deadline_ms: int | None = Field(default=None, ge=50, le=60_000)
    callback_url: str | None = Field(default=None, max_length=2048)

    @field_validator("segment")
    @classmethod
    def _segment(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = value.strip().lower()
        if not SEGMENT_RE.fullmatch(value):
            raise ValueError(f"must be a short label matching {SEGMENT_RE.pattern} (a cohort, not free text)")
        return value

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = value.strip().lower().replace("_", "-")
        if not LOCALE_RE.fullmatch(value):
            raise ValueError("must be a language tag such as 'en' or 'en-us'")
        return value

    @field_validator("viewed", "carted", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError("must be a list of product ids")
        try:
            return list(dict.fromkeys(check_id(v, "product id") for v in value))
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not CALLBACK_RE.fullmatch(value):
            raise ValueError("must be an http(s):// URL without credentials")
        return value


def parse_context(context: Any) -> ShopperContext:
    """Validate `context`; errors name the field and the rule."""
    if context is None:
        return ShopperContext()
    if not isinstance(context, dict):
        raise InvalidInput(f"context must be a JSON object, got {type(context).__name__}")
    try:
        return ShopperContext.model_validate(context)
    except ValidationError as exc:
        raise InvalidInput("invalid context: " + describe_errors(exc)) from None


def device_class(device: str | None) -> str:
    """`mobile`, `tablet`, `desktop` or `unknown`, from a device hint or a user agent."""
    text = (device or "").lower()
    if not text:
        return "unknown"
    if any(k in text for k in ("ipad", "tablet", "kindle", "silk")):
        return "tablet"
    if any(k in text for k in ("mobi", "iphone", "android", "phone")):
        return "mobile"
    if any(k in text for k in ("desktop", "windows", "macintosh", "x11", "linux", "cros")):
        return "desktop"
    return "unknown"


def referrer_class(referrer: str | None) -> str:
    """`direct`, `search`, `social`, `email`, `ads` or `other`: the host's kind, never the URL."""
    if not referrer:
        return "direct"
    parts = urlsplit(referrer if "//" in referrer else "//" + referrer)
    host = (parts.hostname or "").lower()
    query = parse_qs(parts.query)
    medium = (query.get("utm_medium") or [""])[0].lower()
    if medium in ("email", "newsletter") or any(host.startswith(e) or f".{e}" in host for e in _EMAIL):
        return "email"
    if medium in ("cpc", "ppc", "paid", "ads", "display") or "gclid" in query:
        return "ads"
    if any(s in host for s in _SEARCH):
        return "search"
    if any(host == s.rstrip(".") or host.startswith(s) or f".{s}" in host for s in _SOCIAL):
        return "social"
    return "other" if host else "direct"


@dataclass(frozen=True)
class Cohort:
    """What a group of shoppers share; the only shopper-derived input the model sees."""

    segment: str
    locale: str
    device: str
    referrer: str
    top_categories: tuple[str, ...]
    cart: str

    def signals(self) -> dict[str, Any]:
        out = asdict(self)
        out["top_categories"] = list(self.top_categories)
        return out

    @cached_property
    def key(self) -> str:
        """A short, stable name for the cohort (logs, `meta.cohort`)."""
        return "c_" + input_hash(self.signals()).removeprefix("sha256:")[:16]


@dataclass(frozen=True)
class Catalog:
    """Candidates in catalog order, indexed by id.

    `memo` holds what is derived from the catalog per cohort (shortlists, prompt inputs): a
    snapshot's catalog serves many requests, and it dies with the catalog.
    """

    products: tuple[Candidate, ...]
    by_id: dict[str, Candidate]
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    # Ids the store's snapshot holds but shoppers may not see (drafts, archived, ...): a payload's
    # candidates with these ids are dropped too (domain/catalog.py).
    hidden: frozenset[str] = field(default_factory=frozenset, compare=False, repr=False)

    def remember(self, key: Any, make: Callable[[], T]) -> T:
        """`make()`, computed once per `key` for this catalog (bounded: cleared when full)."""
        try:
            return self.memo[key]
        except KeyError:
            if len(self.memo) >= MEMO_LIMIT:
                self.memo.clear()
            value = self.memo[key] = make()
            return value

    @classmethod
    def of(cls, products: Iterable[Candidate], hidden: Iterable[str] = ()) -> Catalog:
        hide = frozenset(hidden)
        by_id: dict[str, Candidate] = {}
        for product in products:
            if product.id not in hide:
                by_id.setdefault(product.id, product)  # the first occurrence of an id wins
        return cls(tuple(by_id.values()), by_id, hidden=hide)


def cohort_of(ctx: ShopperContext, catalog: Catalog) -> Cohort:
    """Reduce a shopper's context to their cohort."""
    counts: Counter[str] = Counter()
    for pid in [*ctx.viewed, *ctx.carted]:
        product = catalog.by_id.get(pid)
        if product is not None and product.category:
            counts[product.category] += 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TOP_CATEGORIES]
    return Cohort(
        segment=ctx.segment or "default",
        locale=ctx.locale or "en",
        device=device_class(ctx.device),
        referrer=referrer_class(ctx.referrer),
        # A set, not a ranking: shoppers who looked at the same two categories share a cohort.
        top_categories=tuple(sorted(name for name, _ in top)),
        cart="has_items" if ctx.carted else "empty",
    )


def shortlist(catalog: Catalog, cohort: Cohort, limit: int = MAX_PROMPT_CANDIDATES) -> list[Candidate]:
    """The candidates the model ranks: the cohort's categories first, then catalog order."""

    def make() -> list[Candidate]:
        wanted = set(cohort.top_categories)
        first = [p for p in catalog.products if p.category in wanted]
        rest = [p for p in catalog.products if p.category not in wanted]
        return (first + rest)[:limit]

    return catalog.remember(("shortlist", cohort.top_categories, limit), make)


def default_ranking(candidates: list[Candidate], limit: int = MAX_FEATURED) -> list[str]:
    """The non-AI ordering: the shortlist's order (cohort categories first)."""
    return [c.id for c in candidates[:limit]]


def apply_touches(
    ranked: list[str], ctx: ShopperContext, known: dict[str, Candidate]
) -> tuple[list[str], bool]:
    """Per-shopper order: recently viewed (not carted) known products first, most recent first.

    Returns the ranking and whether it changed. `viewed` is most recent first.
    """
    carted = set(ctx.carted)
    first = [pid for pid in ctx.viewed if pid in known and pid not in carted][:MAX_VIEWED_FIRST]
    out = first + [pid for pid in ranked if pid not in first]
    out = out[:MAX_RANKED]
    return out, out[: len(first)] != ranked[: len(first)]
