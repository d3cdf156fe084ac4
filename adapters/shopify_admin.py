"""A store's Shopify Admin GraphQL API: the catalog, page by page, and approved copy pushed back.

`POST {base}/admin/api/{version}/graphql.json` with `X-Shopify-Access-Token`, where `base`
is `SHOPIFY_API_BASE_URL` (a `{shop}` in it becomes the shop domain) or `https://{shop}`.
Products come in pages of `page_size` by cursor (`pageInfo.endCursor`); a product with more
variants than a page carries is completed by its own cursor. Before each query the client
waits until Shopify's bucket holds what the query will cost (`shopify_throttle.Bucket`), and
a `THROTTLED` refusal is waited out for the missing points, never treated as a failure.

Errors are translated here: callers see `ShopifyAuthError` (a person must set a new token),
`ShopifyUnavailable` (retry later) or `ShopifyQueryError`, never an httpx exception.
Products are handed on in the Admin REST shape (`id`, `body_html`, `variants[].price`, ...)
that uploads use too, so one parser reads both. A push reads the product's text first
(`product_text`), then writes it with `productUpdate` and image alts with `fileUpdate`;
a mutation's `userErrors` are a `ShopifyQueryError` (refused input is not retried).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from adapters.errors import ShopifyAuthError, ShopifyQueryError, ShopifyUnavailable
from adapters.logs import get_logger
from adapters.retry import acall, retry_after_s
from adapters.shopify_throttle import Bucket

log = get_logger("adapters.shopify_admin")

VARIANT_FIELDS = "legacyResourceId title price compareAtPrice sku availableForSale"
PRODUCTS_QUERY = """
query CatalogPage($first: Int!, $after: String) {
  products(first: $first, after: $after, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyResourceId title handle descriptionHtml vendor productType tags status publishedAt updatedAt
      options(first: 3) { name values }
      variants(first: 25) { pageInfo { hasNextPage endCursor } nodes { VARIANT_FIELDS } }
      media(first: 3) { nodes { ... on MediaImage { id alt image { url altText } } } }
    }
  }
}
""".replace("VARIANT_FIELDS", VARIANT_FIELDS)
MORE_VARIANTS_QUERY = """
query MoreVariants($id: ID!, $after: String) {
  product(id: $id) {
    variants(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { VARIANT_FIELDS } }
  }
}
""".replace("VARIANT_FIELDS", VARIANT_FIELDS)
SHOP_QUERY = "query Shop { shop { name currencyCode myshopifyDomain } }"
# What a push compares with what the draft was made from (a merchant's edit since is a conflict).
PRODUCT_TEXT_QUERY = """
query ProductText($id: ID!) {
  product(id: $id) {
    id title descriptionHtml updatedAt seo { title description }
    media(first: 20) { nodes { ... on MediaImage { id alt } } }
  }
}
"""
QUERIES = (PRODUCTS_QUERY, MORE_VARIANTS_QUERY, SHOP_QUERY, PRODUCT_TEXT_QUERY)
# Approved copy back to the product (2024-10 and later: `productUpdate(product:)`); image alt
# text through `fileUpdate`, which replaced the deprecated `productUpdateMedia`.
PRODUCT_UPDATE_MUTATION = """
mutation PushCopy($product: ProductUpdateInput!) {
  productUpdate(product: $product) {
    product { id updatedAt }
    userErrors { field message }
  }
}
"""
ALT_TEXT_MUTATION = """
mutation PushAltText($files: [FileUpdateInput!]!) {
  fileUpdate(files: $files) {
    files { id alt }
    userErrors { field message code }
  }
}
"""
MUTATIONS = (PRODUCT_UPDATE_MUTATION, ALT_TEXT_MUTATION)
MUTATION_VERSIONS = ("2024-10", "2025-01")  # the versions whose schema has `productUpdate(product:)`

MAX_VARIANTS = 250  # what a snapshot row keeps of a product (agents.shopify's limit)
THROTTLE_GIVE_UP_S = 300.0  # one query throttled this long in all: retry the job later
TRANSIENT_ATTEMPTS = 5


class _TooCostly(Exception):
    """Shopify's MAX_COST_EXCEEDED: the same query with a smaller page fits."""


def admin_url(base_url: str | None, shop_domain: str, version: str) -> str:
    base = (base_url or "https://{shop}").replace("{shop}", shop_domain).rstrip("/")
    return f"{base}/admin/api/{version}/graphql.json"


def _gid_tail(gid: Any) -> str | None:
    return str(gid).rsplit("/", 1)[-1] if gid else None


def rest_shape(node: dict[str, Any], variants: list[dict[str, Any]]) -> dict[str, Any]:
    """A GraphQL product node in the Admin REST shape uploads have."""
    images = []
    for media in (node.get("media") or {}).get("nodes") or []:
        image = media.get("image") if isinstance(media, dict) else None
        if image and image.get("url"):
            alt = media.get("alt") or image.get("altText")
            images.append({"id": _gid_tail(media.get("id")), "src": image["url"], "alt": alt})
    return {
        "id": str(node.get("legacyResourceId") or _gid_tail(node.get("id"))),
        "title": node.get("title"),
        "handle": node.get("handle"),
        "body_html": node.get("descriptionHtml") or "",
        "vendor": node.get("vendor") or "",
        "product_type": node.get("productType") or "",
        "tags": node.get("tags") or [],
        "status": str(node.get("status") or "").lower() or None,
        "published_at": node.get("publishedAt"),
        "updated_at": node.get("updatedAt"),
        "options": [
            {"name": o.get("name"), "values": o.get("values") or []} for o in node.get("options") or []
        ],
        "variants": [
            {
                "id": str(v.get("legacyResourceId")),
                "title": v.get("title") or "",
                "price": v.get("price"),
                "compare_at_price": v.get("compareAtPrice"),
                "sku": v.get("sku"),
                "available": v.get("availableForSale"),
            }
            for v in variants
        ],
        "images": images,
    }


class AdminApi:
    """One store's Admin GraphQL API; use as `async with AdminApi(...) as api`."""

    def __init__(
        self,
        *,
        shop_domain: str,
        token: str,
        version: str,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.shop = shop_domain
        self.url = admin_url(base_url, shop_domain, version)
        self._headers = {"X-Shopify-Access-Token": token, "Content-Type": "application/json"}
        self._client = httpx.AsyncClient(timeout=timeout_s)
        self._sleep = sleep
        self.bucket = Bucket()
        self.requests = 0
        self.throttled = 0  # THROTTLED refusals waited out
        self.waited_s = 0.0  # time spent waiting for the bucket, paced or refused

    async def __aenter__(self) -> AdminApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    # --- one query --------------------------------------------------------------------

    async def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of one query, after waiting for the points it needs (and out any refusal)."""
        started = time.monotonic()
        while True:
            await self._wait(self.bucket.wait_for(self.bucket.last_cost))
            body = await acall(
                lambda: self._post(document, variables),
                on=ShopifyUnavailable,
                base_s=0.5,
                cap_s=10.0,
                attempts=TRANSIENT_ATTEMPTS,
            )
            self.bucket.observe(body.get("extensions"))
            errors = body.get("errors")
            if not errors:
                data = body.get("data")
                if not isinstance(data, dict):
                    raise ShopifyQueryError(f"Shopify answered {self.shop} without data")
                return data
            codes = {_code(e) for e in errors} if isinstance(errors, list) else set()
            if "THROTTLED" in codes:
                self.throttled += 1
                wait = self.bucket.wait_for(self.bucket.last_cost) or 1.0
                if time.monotonic() + wait - started > THROTTLE_GIVE_UP_S:
                    raise ShopifyUnavailable(
                        f"{self.shop} stayed throttled for {THROTTLE_GIVE_UP_S:.0f}s", retry_after=wait
                    )
                log.info("shopify_throttled", shop=self.shop, wait_s=round(wait, 3))
                await self._wait(wait)
                continue
            if "MAX_COST_EXCEEDED" in codes:
                raise _TooCostly()
            if "ACCESS_DENIED" in codes:
                raise ShopifyAuthError(
                    f"the Admin API token of {self.shop} lacks an access scope the catalog needs "
                    "(read_products; write_products and write_files to push copy): grant it in the app's "
                    "settings, then set the token again"
                )
            raise ShopifyQueryError(f"Shopify refused the query for {self.shop}: {_messages(errors)}")

    async def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.waited_s += seconds
            await self._sleep(seconds)

    async def _post(self, document: str, variables: dict[str, Any] | None) -> dict[str, Any]:
        self.requests += 1
        try:
            response = await self._client.post(
                self.url, headers=self._headers, json={"query": document, "variables": variables or {}}
            )
        except httpx.TimeoutException:
            raise ShopifyUnavailable(f"Shopify did not answer for {self.shop} in time") from None
        except httpx.HTTPError as exc:
            raise ShopifyUnavailable(
                f"could not reach Shopify for {self.shop}: {type(exc).__name__}"
            ) from None
        status = response.status_code
        if status in (401, 403):
            raise ShopifyAuthError(
                f"Shopify refused the Admin API token of {self.shop} ({status}); set a valid one with "
                "`wandstore-agents stores shopify-token STORE` or PUT /v1/stores/{store}/shopify"
            )
        if status == 429 or status >= 500:
            raise ShopifyUnavailable(
                f"Shopify answered {status} for {self.shop}",
                retry_after=retry_after_s(response.headers.get("Retry-After")),
            )
        if status in (402, 404, 423):
            why = {402: "the shop's plan is unpaid", 404: "no Admin API there", 423: "the shop is locked"}
            raise ShopifyQueryError(
                f"Shopify answered {status} for {self.shop} ({why[status]}): check the store's shop_domain, "
                "SHOPIFY_API_BASE_URL and SHOPIFY_API_VERSION"
            )
        if status != 200:
            raise ShopifyQueryError(f"Shopify answered {status} for {self.shop}")
        try:
            body = response.json()
        except ValueError:
            raise ShopifyUnavailable(f"Shopify sent {self.shop}'s answer cut short or garbled") from None
        if not isinstance(body, dict):
            raise ShopifyQueryError(f"Shopify answered {self.shop} with something other than a JSON object")
        return body

    # --- what the catalog needs ---------------------------------------------------------

    async def shop_info(self) -> dict[str, Any]:
        """The shop's name, currency and myshopify domain (also proves the token works)."""
        data = await self.query(SHOP_QUERY)
        return dict(data.get("shop") or {})

    async def product_pages(self, page_size: int) -> AsyncIterator[list[dict[str, Any]]]:
        """The whole catalog, a page of REST-shaped products at a time (only one page in memory)."""
        after: str | None = None
        first = page_size
        while True:
            try:
                data = await self.query(PRODUCTS_QUERY, {"first": first, "after": after})
            except _TooCostly:
                if first == 1:
                    raise ShopifyQueryError(
                        f"one product costs more than {self.shop}'s query limit"
                    ) from None
                first = max(1, first // 2)
                self.bucket.last_cost = None
                log.info("shopify_page_smaller", shop=self.shop, page_size=first)
                continue
            connection = data.get("products") or {}
            page = [rest_shape(node, await self._variants(node)) for node in connection.get("nodes") or []]
            yield page
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            after = info.get("endCursor")
            if not after:
                raise ShopifyQueryError(f"Shopify said {self.shop} has another page but gave no cursor")

    # --- what a push needs ------------------------------------------------------------------

    async def product_text(self, product_id: str) -> dict[str, Any] | None:
        """A product's title, description, SEO, `updatedAt` and image alts now; None when it is gone."""
        data = await self.query(PRODUCT_TEXT_QUERY, {"id": product_gid(product_id)})
        node = data.get("product")
        if not isinstance(node, dict):
            return None
        seo = node.get("seo") or {}
        media = [
            m for m in (node.get("media") or {}).get("nodes") or [] if isinstance(m, dict) and m.get("id")
        ]
        return {
            "id": _gid_tail(node.get("id")),
            "title": node.get("title"),
            "description_html": node.get("descriptionHtml") or "",
            "updated_at": node.get("updatedAt"),
            "seo_title": seo.get("title"),
            "meta_description": seo.get("description"),
            "image_alts": {_gid_tail(m["id"]): m.get("alt") for m in media},
        }

    async def update_product(
        self, product_id: str, *, title: str, description_html: str, seo_title: str, seo_description: str
    ) -> dict[str, Any]:
        """`productUpdate`: title, description HTML and SEO; returns the product's id and new `updatedAt`."""
        product = {
            "id": product_gid(product_id),
            "title": title,
            "descriptionHtml": description_html,
            "seo": {"title": seo_title, "description": seo_description},
        }
        data = await self.query(PRODUCT_UPDATE_MUTATION, {"product": product})
        result = data.get("productUpdate") or {}
        _refused(result, f"productUpdate of product {product_id}")
        return dict(result.get("product") or {})

    async def update_alt_text(self, alts: dict[str, str]) -> list[dict[str, Any]]:
        """`fileUpdate`: the alt text of product images (MediaImage ids -> alt)."""
        if not alts:
            return []
        files = [{"id": f"gid://shopify/MediaImage/{i}", "alt": alt} for i, alt in alts.items()]
        data = await self.query(ALT_TEXT_MUTATION, {"files": files})
        result = data.get("fileUpdate") or {}
        _refused(result, "fileUpdate of image alt text")
        return list(result.get("files") or [])

    async def _variants(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        connection = node.get("variants") or {}
        variants = list(connection.get("nodes") or [])
        info = connection.get("pageInfo") or {}
        cost = self.bucket.last_cost
        while info.get("hasNextPage") and info.get("endCursor") and len(variants) < MAX_VARIANTS:
            self.bucket.last_cost = None  # this query costs its own; paced on what the bucket says
            data = await self.query(MORE_VARIANTS_QUERY, {"id": node["id"], "after": info["endCursor"]})
            more = ((data.get("product") or {}).get("variants")) or {}
            variants.extend(more.get("nodes") or [])
            info = more.get("pageInfo") or {}
        if cost is not None:
            self.bucket.last_cost = cost  # the next query is a catalog page again
        return variants[:MAX_VARIANTS]


def product_gid(product_id: str) -> str:
    return product_id if str(product_id).startswith("gid://") else f"gid://shopify/Product/{product_id}"


def _refused(result: dict[str, Any], what: str) -> None:
    """A mutation's `userErrors`: Shopify refused the input (a person must look), never retried."""
    errors = result.get("userErrors") or []
    if errors:
        raise ShopifyQueryError(f"Shopify refused the {what}: {_messages(errors)}")


def _code(error: Any) -> str | None:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    return extensions.get("code") if isinstance(extensions, dict) else None


def _messages(errors: Any) -> str:
    if isinstance(errors, str):
        return errors[:300]
    if isinstance(errors, list):
        return "; ".join(str(e.get("message", e))[:200] for e in errors[:3] if isinstance(e, dict)) or "?"
    return str(errors)[:300]
