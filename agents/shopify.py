"""Shopify products as Shopify serves them (Admin REST or storefront `products.json`)."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.errors import InvalidInput
from domain.keys import check_id
from domain.sanitize import html_to_text, plain_text


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class Variant(_Loose):
    id: str | None = None
    title: str = ""
    price: str | None = None
    compare_at_price: str | None = None
    sku: str | None = None
    available: bool | None = None
    option1: str | None = None
    option2: str | None = None
    option3: str | None = None
    # Admin REST exports say nothing of `available`; stock and policy decide it.
    inventory_management: str | None = None
    inventory_policy: str | None = None
    inventory_quantity: int | None = None

    def for_sale(self) -> bool | None:
        """Whether a shopper can buy it: `available` when given, else from stock; None when unknown."""
        if self.available is not None:
            return self.available
        if self.inventory_quantity is None and self.inventory_management is None:
            return None
        if self.inventory_management and (self.inventory_policy or "deny") == "deny":
            return (self.inventory_quantity or 0) > 0
        return True  # stock not tracked, or sold when out of stock

    @field_validator("price", "compare_at_price", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        """A price is a decimal amount: "NaN", "Infinity" or 1e999 is refused, naming the field.

        (Accepted, "NaN" reached the catalog snapshot, where comparing prices raised a 500.)
        Other text is left as Shopify sent it; only numbers that are not finite are refused.
        """
        if isinstance(value, bool) or value is None:
            return value
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            return value
        if not number.is_finite() or not math.isfinite(float(number)):
            raise ValueError(f"must be a finite amount, not {str(value)[:20]!r}")
        return value


class Image(_Loose):
    id: str
    src: str = ""
    alt: str | None = None
    position: int | None = None


class Option(_Loose):
    name: str
    values: list[str] = Field(default_factory=list)


class ShopifyProduct(_Loose):
    """The fields product copy reads; everything else Shopify sends is ignored."""

    id: str
    title: str = Field(min_length=1, max_length=1000)
    body_html: str | None = Field(default="", max_length=200_000)
    vendor: str | None = ""
    product_type: str | None = ""
    handle: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=250)
    options: list[Option] = Field(default_factory=list, max_length=10)
    variants: list[Variant] = Field(default_factory=list, max_length=250)
    images: list[Image] = Field(default_factory=list, max_length=250)
    # Where it stands in Shopify (Admin exports, sync and webhooks; storefront exports list only
    # active, published products and carry no status).
    status: str | None = Field(default=None, max_length=32)
    published_at: str | None = Field(default=None, max_length=64)
    updated_at: str | None = Field(default=None, max_length=64)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> str:
        try:
            return check_id(value, "product id")
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return list(value)

    @property
    def published(self) -> bool | None:
        """On the online store: a `published_at`; unpublished when it is null; None when not said."""
        return None if "published_at" not in self.model_fields_set else self.published_at is not None

    def for_sale(self) -> bool | None:
        """Whether any variant can be bought (None when the export does not say)."""
        seen = [v.for_sale() for v in self.variants]
        if any(seen):
            return True
        return False if seen and all(s is False for s in seen) else None

    def facts(self, description_chars: int = 6000) -> dict[str, Any]:
        """The product as plain data for a prompt: no markup, nothing executable."""
        prices = sorted({v.price for v in self.variants if v.price})
        return {
            "title": plain_text(self.title),
            "vendor": plain_text(self.vendor or ""),
            "product_type": plain_text(self.product_type or ""),
            "tags": [plain_text(t) for t in self.tags[:40]],
            "options": [
                {"name": plain_text(o.name), "values": [plain_text(v) for v in o.values[:20]]}
                for o in self.options
            ],
            "variants": [
                {"title": plain_text(v.title), "price": v.price, "sku": v.sku} for v in self.variants[:20]
            ],
            "price_range": [prices[0], prices[-1]] if prices else [],
            "description": html_to_text(self.body_html or "")[:description_chars],
            "images": [{"id": i.id, "alt": plain_text(i.alt or "")} for i in self.images[:20]],
        }


def parse_product(payload: Any) -> ShopifyProduct:
    """Validate one product; errors name the field and the rule."""
    if not isinstance(payload, dict):
        raise InvalidInput(f"product must be a JSON object, got {type(payload).__name__}")
    try:
        return ShopifyProduct.model_validate(payload)
    except ValidationError as exc:
        raise InvalidInput("invalid product: " + describe_errors(exc)) from None


def describe_errors(exc: ValidationError, limit: int = 5) -> str:
    """Pydantic errors as 'field: rule' phrases a person can act on."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def load_products(data: Any) -> list[dict[str, Any]]:
    """One product, a list, or a `{"products": [...]}` export, as a list of dicts."""
    if isinstance(data, dict) and isinstance(data.get("products"), list):
        return list(data["products"])
    if isinstance(data, dict) and isinstance(data.get("product"), dict):
        return [data["product"]]
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return list(data)
    raise InvalidInput('expected a product, a list of products or {"products": [...]}')
