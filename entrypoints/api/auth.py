"""The gate in front of `/v1/`: bearer token (401), the path's store (422/403), rate limit (429).

Tokens are checked before the body is read, on the event loop over the asyncio Redis client
(no thread, so a dependency that holds threads cannot delay them), each check bounded by
API_REDIS_TIMEOUT_S: a Redis that does not answer is a 503 with Retry-After. The token itself
is never logged; only its public id is, on the request's log line.

Routes then declare the scope they need (`needs("publish", "activating a theme")`); a token
without it gets 403 naming the scope.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.errors import BrokerUnavailable
from adapters.redis_conn import AsyncRedis
from adapters.tokens import SCOPES, Principal, TokenStore
from domain.keys import STORE_RE
from entrypoints.api.bulkhead import redis_deadline
from entrypoints.api.errors import ApiError, error_response
from entrypoints.api.limits import RateLimiter

_STORE_PATH = re.compile(r"^/v1/stores/([^/]*)(?:/|$)")
SHOPIFY_WEBHOOKS = "/v1/shopify/webhooks"  # signed by Shopify with the app's secret, not a bearer token
_HOW_TO = "send 'Authorization: Bearer <token>' (create one with `wandstore-agents tokens create STORE`)"
RETRY_AFTER_S = 5


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return token.strip() or None
    return None


class Gate:
    """Authenticate, authorize the path's store and rate-limit it, before anything else runs."""

    def __init__(
        self, app: ASGIApp, tokens: TokenStore, limiter: RateLimiter, aredis: AsyncRedis, timeout_s: float
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.limiter = limiter
        self.aredis = aredis
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/") or path == SHOPIFY_WEBHOOKS:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        token = bearer_token(scope)
        if token is None:
            await self._deny(scope, receive, send, 401, "unauthorized", f"missing bearer token: {_HOW_TO}")
            return
        try:
            async with redis_deadline(self.timeout_s, "the token check"):
                principal = await self.tokens.averify(token, self.aredis.client())
        except BrokerUnavailable:
            await self._unavailable(scope, receive, send)
            return
        if principal is None:
            await self._deny(
                scope, receive, send, 401, "unauthorized", f"invalid or revoked token: {_HOW_TO}"
            )
            return
        state["principal"] = principal
        match = _STORE_PATH.match(scope["path"])
        store = match.group(1) if match else None
        if store is not None:
            if not STORE_RE.fullmatch(store):
                await self._send(
                    scope,
                    receive,
                    send,
                    ApiError(
                        422,
                        "invalid_request",
                        f"store: {store[:70]!r} is not a store slug (must match {STORE_RE.pattern})",
                        details=[
                            {"field": "store", "in": "path", "rule": "pattern", "message": STORE_RE.pattern}
                        ],
                    ),
                )
                return
            if not principal.may_access(store):
                await self._deny(
                    scope,
                    receive,
                    send,
                    403,
                    "forbidden",
                    f"this token belongs to another store, not {store!r}",
                )
                return
        limited = store or (None if principal.is_ops else principal.store)
        if limited is not None:
            try:
                decision = await self.limiter.hit(limited)
            except BrokerUnavailable:
                await self._unavailable(scope, receive, send)
                return
            if not decision.allowed:
                await self._deny(
                    scope,
                    receive,
                    send,
                    429,
                    "rate_limited",
                    f"store {limited!r} made more than {decision.limit} requests in "
                    f"{self.limiter.window_s}s (API_RATE_LIMIT); retry after {decision.retry_after_s}s",
                    {"Retry-After": str(decision.retry_after_s)},
                )
                return
        await self.app(scope, receive, send)

    async def _unavailable(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"Redis is unavailable; retry after {RETRY_AFTER_S}s"
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        await self._deny(scope, receive, send, 503, "unavailable", message, headers)

    async def _deny(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        if status == 401:
            headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
        await self._send(scope, receive, send, ApiError(status, code, message, headers=headers))

    @staticmethod
    async def _send(scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
        response = error_response(error.status, error.code, error.message, error.details, error.headers)
        await response(scope, receive, send)


def principal_of(request: Request) -> Principal:
    """The request's principal (set by the gate)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:  # only reachable if a /v1 route were mounted outside the gate
        raise ApiError(401, "unauthorized", f"missing bearer token: {_HOW_TO}")
    return principal


def require_store(principal: Principal, store: str) -> None:
    """403 unless the principal may act for `store` (for resources found by id)."""
    if not principal.may_access(store):
        raise ApiError(403, "forbidden", "this token belongs to another store")


def require_scope(principal: Principal, scope: str, action: str) -> None:
    """403 naming the scope unless the principal's token has it."""
    if principal.may(scope):
        return
    has = ", ".join(s for s in SCOPES if s in principal.scopes) or "none"
    wanted = " ".join(f"--scope {s}" for s in SCOPES if s in principal.scopes or s == scope)
    raise ApiError(
        403,
        "forbidden",
        f"this token lacks the {scope!r} scope, which {action} needs (it has: {has}); "
        f"grant it with `wandstore-agents tokens scopes {principal.token_id} {wanted}`, or use a "
        "token created with it",
        details=[
            {"field": "Authorization", "in": "header", "rule": "scope", "scope": scope, "message": action}
        ],
    )


def needs(scope: str, action: str) -> Any:
    """A route dependency: the request's token must have `scope` (403 naming it otherwise)."""

    async def check(request: Request) -> None:  # async: FastAPI runs sync dependencies on threads
        require_scope(principal_of(request), scope, action)

    return Depends(check)
