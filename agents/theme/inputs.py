"""What a theme build starts from: the merchant's brief and the store's products, as plain data."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.errors import InvalidInput
from agents.shopify import ShopifyProduct, describe_errors, load_products
from domain.sanitize import html_to_text, plain_text

MAX_PRODUCTS = 60
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_SUMMARY_CHARS = 220


class ThemeBrief(BaseModel):
    """The brief contract: `description`, and optionally `audience`, `tone`, `palette_hint`, `locale`.

    `locale` is the language the page is written in (a tag such as `es` or `pt-BR`); left out,
    a build takes the store record's.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    description: str = Field(min_length=3, max_length=2000)
    audience: str | None = Field(default=None, max_length=300)
    tone: str | None = Field(default=None, max_length=200)
    palette_hint: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, max_length=20, description="e.g. es, fr, de or pt-BR")

    @field_validator("locale", mode="before")
    @classmethod
    def _locale(cls, value: Any) -> Any:
        if isinstance(value, str):
            lang, _, rest = value.strip().replace("_", "-").partition("-")
            value = f"{lang.lower()}-{rest}" if rest else lang.lower()
            if not _LOCALE.fullmatch(value):
                raise ValueError("must be a language tag such as 'es', 'fr' or 'pt-BR'")
        return value

    def as_data(self) -> dict[str, str]:
        """The brief as plain text fields for a prompt (markup removed, nothing active)."""
        return {k: plain_text(v) for k, v in self.model_dump().items() if v}


def parse_brief(payload: Any) -> ThemeBrief:
    """Validate a brief; errors name the field and the rule."""
    if not isinstance(payload, dict):
        raise InvalidInput(f"brief must be a JSON object with a 'description', got {type(payload).__name__}")
    try:
        return ThemeBrief.model_validate(payload)
    except ValidationError as exc:
        raise InvalidInput("invalid brief: " + describe_errors(exc)) from None


@dataclass(frozen=True)
class StoreProduct:
    """One product reduced to what prompts and the theme's templates use."""

    id: str
    title: str
    product_type: str
    vendor: str
    price: str
    tags: tuple[str, ...]
    summary: str
    handle: str
    image_src: str
    image_alt: str

    def for_prompt(self, *, with_id: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id} if with_id else {}
        out.update(title=self.title, product_type=self.product_type, price=self.price)
        if self.tags:
            out["tags"] = list(self.tags[:6])
        if self.summary:
            out["summary"] = self.summary
        return out

    def for_theme(self) -> dict[str, Any]:
        """What `theme.json` carries for the storefront (merchant data, already plain text)."""
        return {
            "id": self.id,
            "title": self.title,
            "product_type": self.product_type,
            "price": self.price,
            "handle": self.handle,
            "image": {"src": self.image_src, "alt": self.image_alt} if self.image_src else None,
        }


def _price(product: ShopifyProduct, raw: dict[str, Any]) -> str:
    prices = sorted({v.price for v in product.variants if v.price}, key=_as_number)
    if prices:
        return prices[0]
    value = raw.get("price")  # the reduced catalog shape: {id, title, product_type, price, tags}
    return str(value) if isinstance(value, int | float | str) and str(value).strip() else ""


def _as_number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("inf")


def _https(src: str) -> str:
    # Merchant data, still checked: only plain https URLs reach theme.json.
    return src if src.startswith("https://") and not any(c in src for c in " \"'<>\\`") else ""


def store_products(payload: Any, limit: int = MAX_PRODUCTS) -> list[StoreProduct]:
    """Products from a catalog snapshot (Shopify export, list, or reduced rows); invalid ones skipped."""
    out: list[StoreProduct] = []
    for raw in load_products(payload):
        if not isinstance(raw, dict):
            continue
        try:
            product = ShopifyProduct.model_validate(raw)
        except ValidationError:
            continue
        image = product.images[0] if product.images else None
        title = plain_text(product.title, 120)
        out.append(
            StoreProduct(
                id=product.id,
                title=title,
                product_type=plain_text(product.product_type or "", 60),
                vendor=plain_text(product.vendor or "", 60),
                price=plain_text(_price(product, raw), 20),
                tags=tuple(t for t in (plain_text(x, 40) for x in product.tags[:12]) if t),
                summary=plain_text(html_to_text(product.body_html or ""), _SUMMARY_CHARS),
                handle=plain_text(product.handle or "", 120),
                image_src=_https(image.src) if image else "",
                image_alt=plain_text(image.alt or title, 125) if image else "",
            )
        )
        if len(out) >= limit:
            break
    return out


def store_name(store: str, products: list[StoreProduct]) -> str:
    """The name to show: the vendor of most products when one dominates, else the slug."""
    vendors = Counter(p.vendor for p in products if p.vendor)
    if vendors:
        vendor, count = vendors.most_common(1)[0]
        if count * 2 >= len(products):
            return vendor
    return " ".join(part.capitalize() for part in store.split("-"))
