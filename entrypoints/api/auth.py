"""The gate in front of `/v1/`: bearer token (401), the path's store (422/403), rate limit (429).

Tokens are checked before the body is read. The token itself is never logged; only its
public id is, on the request's log line.
"""

from __future__ import annotations

import re

from anyio import to_thread
from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.errors import BrokerUnavailable
from adapters.tokens import Principal, TokenStore
from domain.keys import STORE_RE
from entrypoints.api.errors import ApiError, error_response
from entrypoints.api.limits import RateLimiter

_STORE_PATH = re.compile(r"^/v1/stores/([^/]*)(?:/|$)")
_HOW_TO = "send 'Authorization: Bearer <token>' (create one with `wandstore-agents tokens create STORE`)"


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

    def __init__(self, app: ASGIApp, tokens: TokenStore, limiter: RateLimiter) -> None:
        self.app = app
        self.tokens = tokens
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        token = bearer_token(scope)
        if token is None:
            await self._deny(scope, receive, send, 401, "unauthorized", f"missing bearer token: {_HOW_TO}")
            return
        try:
            principal = await to_thread.run_sync(self.tokens.verify, token)
        except BrokerUnavailable:
            await self._deny(scope, receive, send, 503, "unavailable", "Redis is unavailable; retry shortly")
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
            decision = await to_thread.run_sync(self.limiter.hit, limited)
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
