"""Store records in Redis: which stores exist, their Shopify shop, currency, locale and voice.

A store exists once ops added it (`wandstore-agents stores add`, `PUT /v1/stores/{store}`);
the CLI and the API refuse every other command on a slug nobody added, so a typo is an error
and not a new, empty store. (Actors still take any valid slug: any Dramatiq client may
enqueue them, and that contract stays.)

Keys: `wandstore:store:{slug}` (the record, JSON), the set `wandstore:stores`, the hash
`wandstore:store-domains` (shop domain -> slug, how webhooks find their store) and
`wandstore:store-secret:{slug}` (the Admin API token, encrypted; never returned or logged).
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

import redis
import redis.asyncio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.errors import BrokerUnavailable, InvalidInput, UnknownStore

PREFIX = "wandstore:store:"
INDEX = "wandstore:stores"
DOMAINS = "wandstore:store-domains"
SECRET_PREFIX = "wandstore:store-secret:"

SHOP_DOMAIN_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
LOCALE_RE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
Policy = Literal["auto", "review"]


def how_to_add(store: str) -> str:
    """The one hint every refusal of an unknown store gives (CLI and API alike)."""
    return (
        f"store {store!r} is not known: add it first with `wandstore-agents stores add {store} "
        f"--shop-domain {store}.myshopify.com --currency USD` (or PUT /v1/stores/{store} with the ops token)"
    )


class PublishPolicy(BaseModel):
    """What goes live without review (docs/review-and-publishing.md); copy auto, themes reviewed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    copy_: Policy = Field(default="auto", alias="copy")
    theme: Policy = "review"

    def as_dict(self) -> dict[str, str]:
        return {"copy": self.copy_, "theme": self.theme}


class StoreFields(BaseModel):
    """What a person sets on a store (`PUT /v1/stores/{store}`, `stores add`)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    name: str | None = Field(default=None, min_length=1, max_length=100, description="Display name")
    shop_domain: str = Field(description="The store's Shopify domain, e.g. stanley1913.myshopify.com")
    currency: str = Field(description="ISO 4217 code of the shop's prices, e.g. GBP")
    locale: str = Field(default="en", description="Default locale of the store's copy, e.g. en or en-gb")
    brand_voice: str = Field(default="", max_length=500, description="How the store's copy should sound")
    publish: PublishPolicy = Field(default_factory=PublishPolicy)
    shopify_push: bool = False

    @field_validator("shop_domain", mode="before")
    @classmethod
    def _domain(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        domain = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
        if not SHOP_DOMAIN_RE.fullmatch(domain):
            raise ValueError("must be the shop's *.myshopify.com domain (e.g. stanley1913.myshopify.com)")
        return domain

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
            if not CURRENCY_RE.fullmatch(value):
                raise ValueError("must be an ISO 4217 currency code such as USD, GBP or INR")
        return value

    @field_validator("locale", mode="before")
    @classmethod
    def _locale(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().replace("_", "-")
            if not LOCALE_RE.fullmatch(value):
                raise ValueError("must be a language tag such as 'en' or 'en-GB'")
        return value


class StoreRecord(StoreFields):
    """A store as kept: its fields, its slug and when it was added and last changed."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    store: str
    name: str  # always set once kept (the slug's words by default)
    created_at: float
    updated_at: float

    def public(self) -> dict[str, Any]:
        """The record as the API and `stores show` give it (never a secret)."""
        data = self.model_dump(by_alias=True)
        data["publish"] = self.publish.as_dict()
        return data


def parse_fields(data: Any) -> StoreFields:
    """Validate a store's fields; errors name the field and the rule."""
    if not isinstance(data, dict):
        raise InvalidInput(f"store fields must be a JSON object, got {type(data).__name__}")
    try:
        return StoreFields.model_validate(data)
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:5]]
        raise InvalidInput("invalid store: " + "; ".join(parts)) from None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _default_name(store: str) -> str:
    return " ".join(part.capitalize() for part in store.split("-"))


# Create or replace a record and its domain in one step: a shop domain belongs to one store.
# KEYS: record, index, domains. ARGV: slug, record JSON, new domain, old domain ('' if none).
_PUT = """
local owner = redis.call('hget', KEYS[3], ARGV[3])
if owner and owner ~= ARGV[1] then return owner end
if ARGV[4] ~= '' and ARGV[4] ~= ARGV[3] then redis.call('hdel', KEYS[3], ARGV[4]) end
redis.call('hset', KEYS[3], ARGV[3], ARGV[1])
redis.call('set', KEYS[1], ARGV[2])
redis.call('sadd', KEYS[2], ARGV[1])
return false
"""


class StoreRegistry:
    """Add, change, list and remove stores; keep each store's Admin API token sealed."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._put = client.register_script(_PUT)

    def get(self, store: str) -> StoreRecord | None:
        try:
            raw = self.r.get(PREFIX + store)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the store record from Redis: {exc}") from None
        return StoreRecord.model_validate_json(raw) if raw else None

    def require(self, store: str) -> StoreRecord:
        """The store's record, or `UnknownStore` naming `stores add`."""
        record = self.get(store)
        if record is None:
            raise UnknownStore(how_to_add(store))
        return record

    def exists(self, store: str) -> bool:
        try:
            return bool(self.r.exists(PREFIX + store))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the store record from Redis: {exc}") from None

    @staticmethod
    async def aexists(client: redis.asyncio.Redis, store: str) -> bool:
        """`exists` on an asyncio client (the API's gate)."""
        try:
            return bool(await client.exists(PREFIX + store))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the store record from Redis: {exc}") from None

    def put(self, store: str, fields: StoreFields) -> tuple[StoreRecord, bool]:
        """Create or replace the store's fields; returns the record and whether it was created."""
        before = self.get(store)
        now = time.time()
        record = StoreRecord(
            **{
                **fields.model_dump(by_alias=True),
                "name": fields.name or (before.name if before else _default_name(store)),
            },
            store=store,
            created_at=before.created_at if before else now,
            updated_at=now,
        )
        body = record.model_dump_json(by_alias=True)
        old_domain = before.shop_domain if before else ""
        try:
            owner = self._put(
                keys=[PREFIX + store, INDEX, DOMAINS], args=[store, body, fields.shop_domain, old_domain]
            )
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not write the store record to Redis: {exc}") from None
        if owner:
            raise InvalidInput(
                f"shop_domain: {fields.shop_domain} already belongs to store {_text(owner)!r} "
                "(one store per Shopify shop; webhooks find their store by it)"
            )
        return record, before is None

    def update(self, store: str, **changes: Any) -> tuple[StoreRecord, bool]:
        """Change some fields of a store (create it when every required field is given)."""
        before = self.get(store)
        base = (
            before.model_dump(by_alias=True, include=set(StoreFields.model_fields) | {"publish"})
            if before
            else {}
        )
        if before is not None:
            base["publish"] = before.publish.as_dict()
        merged = {**base, **{k: v for k, v in changes.items() if v is not None}}
        return self.put(store, parse_fields(merged))

    def list(self) -> list[StoreRecord]:
        try:
            slugs = sorted(_text(s) for s in self.r.smembers(INDEX))
            raws = self.r.mget([PREFIX + s for s in slugs]) if slugs else []
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not list stores in Redis: {exc}") from None
        return [StoreRecord.model_validate_json(raw) for raw in raws if raw]

    def remove(self, store: str) -> bool:
        """Forget the store, its shop domain and its Admin API token; True if it existed."""
        record = self.get(store)
        if record is None:
            return False
        try:
            pipe = self.r.pipeline(transaction=True)
            pipe.delete(PREFIX + store, SECRET_PREFIX + store)
            pipe.srem(INDEX, store)
            if record.shop_domain:
                pipe.hdel(DOMAINS, record.shop_domain)
            pipe.execute()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not remove the store from Redis: {exc}") from None
        return True

    def by_domain(self, shop_domain: str) -> str | None:
        """The slug of the store whose Shopify shop is `shop_domain` (webhooks), or None."""
        try:
            slug = self.r.hget(DOMAINS, shop_domain.strip().lower())
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the shop domains from Redis: {exc}") from None
        return _text(slug) if slug else None

    # --- the Admin API token: sealed by the caller's SecretBox, never returned by the API ---

    def set_admin_token(self, store: str, sealed: str) -> None:
        self.require(store)
        try:
            self.r.hset(SECRET_PREFIX + store, mapping={"admin_token": sealed, "set_at": str(time.time())})
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not store the Admin API token in Redis: {exc}") from None

    def sealed_admin_token(self, store: str) -> str | None:
        try:
            sealed = self.r.hget(SECRET_PREFIX + store, "admin_token")
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the Admin API token from Redis: {exc}") from None
        return _text(sealed) if sealed else None

    def admin_token_set_at(self, store: str) -> float | None:
        try:
            at = self.r.hget(SECRET_PREFIX + store, "set_at")
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the Admin API token from Redis: {exc}") from None
        return float(_text(at)) if at else None
