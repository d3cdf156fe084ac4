"""`POST /v1/shopify/webhooks`: Shopify's product webhooks, checked before anything is parsed, then queued.

Shopify signs each delivery with the app's secret: `X-Shopify-Hmac-Sha256` is the base64
HMAC-SHA256 of the raw body. It is compared in constant time before the body is parsed
(a forgery is a 401), then the shop's store is found by `X-Shopify-Shop-Domain`, a delivery
seen before (`X-Shopify-Webhook-Id`) is answered without queuing it again, and the event is
queued as a `shopify_product_event` job. Shopify wants an answer within 5 s; nothing here
waits on more than Redis.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from adapters.logs import get_logger
from adapters.stores import StoreRegistry
from entrypoints.api.common import INLINE_PARSE_BYTES, ctx_of
from entrypoints.api.errors import ApiError, declare
from pipelines.catalog_state import CatalogState
from pipelines.product_webhooks import TOPICS
from pipelines.queues import BATCH
from pipelines.submit import send

PATH = "/v1/shopify/webhooks"
router = APIRouter(prefix="/v1", tags=["shopify"])
log = get_logger("api.shopify_webhooks")
_WEBHOOK_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
SHOPIFY_503 = "SHOPIFY_WEBHOOK_SECRET is not set, or Redis is unavailable; with Retry-After"
RESPONSES = declare(
    400, 401, 408, 413, 503, s401="X-Shopify-Hmac-Sha256 does not match the body", s503=SHOPIFY_503
)
del RESPONSES[401]["headers"]  # a signature, not a bearer token: no WWW-Authenticate challenge
NOT_CONFIGURED_RETRY_S = 300  # Shopify retries for two days: a few minutes gives ops time to set the secret


class WebhookReceived(BaseModel):
    status: str = Field(
        description="queued, duplicate (seen before), or ignored (not a product topic, unknown shop)"
    )
    id: str | None = Field(default=None, description="The queued job's id")
    store: str | None = None
    reason: str | None = None


def signed_by(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is the base64 HMAC-SHA256 of `body` keyed with `secret` (constant time)."""
    if not header:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, header.strip().encode("latin-1"))


@router.post(
    "/shopify/webhooks",
    response_model=WebhookReceived,
    operation_id="receiveShopifyWebhook",
    responses=RESPONSES,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        "x-body-cap": "upload",
    },
)
async def receive(request: Request) -> Any:
    """Shopify's `products/create`, `/update` and `/delete`; no bearer token: Shopify's HMAC instead."""
    ctx = ctx_of(request)
    secret = ctx.settings.shopify_webhook_secret
    if secret is None:
        raise ApiError(
            503,
            "not_configured",
            "this service has no SHOPIFY_WEBHOOK_SECRET (the app's secret Shopify signs with)",
            headers={"Retry-After": str(NOT_CONFIGURED_RETRY_S)},
        )
    body = await request.body()
    if not signed_by(secret.get_secret_value(), body, request.headers.get("x-shopify-hmac-sha256")):
        log.warning("shopify_webhook_refused", reason="hmac", bytes=len(body))
        raise ApiError(401, "unauthorized", "X-Shopify-Hmac-Sha256 does not match the body")
    topic = request.headers.get("x-shopify-topic", "")
    shop = request.headers.get("x-shopify-shop-domain", "").strip().lower()
    webhook_id = request.headers.get("x-shopify-webhook-id", "")
    if topic not in TOPICS:
        return WebhookReceived(status="ignored", reason=f"topic {topic[:60]!r} is not handled here")
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise ApiError(400, "invalid_request", "missing or malformed X-Shopify-Webhook-Id")
    store = await ctx.pools.redis.run(StoreRegistry(ctx.redis).by_domain, shop)
    if store is None:
        # 2xx: Shopify would retry an error for two days; nothing here will ever take it.
        log.warning("shopify_webhook_unknown_shop", shop=shop[:100], topic=topic)
        return WebhookReceived(
            status="ignored", reason="no store has this shop domain (`stores add --shop-domain`)"
        )
    state = CatalogState(ctx.redis)
    if not await ctx.pools.redis.run(state.first_delivery, webhook_id):
        return WebhookReceived(status="duplicate", store=store)
    try:
        try:
            payload = (
                json.loads(body)
                if len(body) <= INLINE_PARSE_BYTES
                else await ctx.pools.parse.run(json.loads, body)
            )
        except ValueError:
            raise ApiError(400, "invalid_request", "the webhook body is not JSON") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "invalid_request", "the webhook body is not a JSON object")
        job_id = await ctx.pools.redis.run(
            lambda: send(
                ctx.broker,
                ctx.status,
                actor="shopify_product_event",
                queue=BATCH,
                args=(store, topic, payload),
                store=store,
                extra={"topic": topic, "webhook_id": webhook_id},
            )
        )
    except BaseException:
        # Not queued: Shopify's retry of this delivery must not be taken for a duplicate.
        await ctx.pools.redis.run(state.forget_delivery, webhook_id)
        raise
    return WebhookReceived(status="queued", id=job_id, store=store)
