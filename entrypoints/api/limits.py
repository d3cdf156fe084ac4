"""Hard edges: bodies capped per route and read against a deadline (413, 408); the rate limit (429)."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.errors import BrokerUnavailable
from adapters.redis_conn import AsyncRedis
from entrypoints.api.bulkhead import redis_deadline
from entrypoints.api.errors import error_response

RATE_PREFIX = "wandstore:api:rate:"
# What a route that declares no cap (or a path no route matches) may send: small forms, not uploads.
DEFAULT_BODY_CAP = 64 * 1024
_NO_BODY = ("GET", "HEAD", "OPTIONS", "DELETE")


@dataclass(frozen=True)
class RouteCap:
    methods: frozenset[str]
    path: re.Pattern[str]
    max_bytes: int
    setting: str  # the variable that sets it, for the 413's message
    stream: bool = False  # the route reads its body itself as it arrives, within the cap (uploads)


def route_caps(routes: Iterable[object], caps: dict[str, tuple[int, str]]) -> list[RouteCap]:
    """The cap of every route that declares one (`openapi_extra["x-body-cap"]`, a key of `caps`).

    `routes` are the routers' own (their paths carry the router's prefix).
    """
    out = []
    for route in routes:
        extra = getattr(route, "openapi_extra", None) or {}
        name = extra.get("x-body-cap", extra.get("x-body-stream"))
        if name is None:
            continue
        max_bytes, setting = caps[name]  # a KeyError here is a typo in a route, found at start
        methods = frozenset(getattr(route, "methods", None) or ())
        stream = "x-body-stream" in extra
        out.append(RouteCap(methods, route.path_regex, max_bytes, setting, stream))  # type: ignore[attr-defined]
    return out


class BodyLimit:
    """Read each request body once, within its route's cap (413) and within `timeout_s` (408).

    The cap is checked on Content-Length first, then by counting the stream, so it holds for
    chunked uploads too. The body is handed on as one chunk, so a handler never sees a
    truncated body. A client that sends its body slower than `timeout_s` (a slow-body attack
    holds a connection and a buffer) gets 408 and the connection is closed.
    """

    def __init__(
        self,
        app: ASGIApp,
        caps: list[RouteCap],
        timeout_s: float,
        default_max_bytes: int = DEFAULT_BODY_CAP,
    ) -> None:
        self.app = app
        self.caps = caps
        self.timeout_s = timeout_s
        self.default_max_bytes = default_max_bytes

    def _cap_for(self, scope: Scope) -> tuple[int, str]:
        for cap in self.caps:
            if scope["method"] in cap.methods and cap.path.match(scope["path"]):
                return cap.max_bytes, cap.setting
        return self.default_max_bytes, "no body expected"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            await self.app(scope, receive, send)
            return
        max_bytes, setting = self._cap_for(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await self._too_large(scope, receive, send, max_bytes, setting)
            return
        if any(c.stream and scope["method"] in c.methods and c.path.match(scope["path"]) for c in self.caps):
            await self.app(scope, receive, send)  # an upload: the route counts and times it as it reads
            return
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > max_bytes or not message.get("more_body", False):
                        chunks.append(chunk)
                        break
                    chunks.append(chunk)
        except TimeoutError:
            await self._too_slow(scope, receive, send, size)
            return
        if size > max_bytes:
            await self._too_large(scope, receive, send, max_bytes, setting)
            return
        body = b"".join(chunks)
        del chunks
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, max_bytes: int, setting: str
    ) -> None:
        response = error_response(
            413,
            "body_too_large",
            f"request body is larger than {max_bytes} bytes ({setting}); "
            "for a large catalog, upload the export to the object store and POST its export_key "
            "to catalog-copy",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def _too_slow(self, scope: Scope, receive: Receive, send: Send, received: int) -> None:
        response = error_response(
            408,
            "body_timeout",
            f"the request body did not arrive within {self.timeout_s:g}s ({received} bytes came; "
            "API_BODY_TIMEOUT_S)",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int


class RateLimiter:
    """A fixed window per store in Redis: at most `limit` requests per `window_s` seconds."""

    def __init__(self, client: AsyncRedis, limit: int, window_s: int, timeout_s: float = 3.0) -> None:
        self.aredis = client
        self.limit = limit
        self.window_s = window_s
        self.timeout_s = timeout_s

    async def hit(self, store: str, now: float | None = None) -> RateDecision:
        now = time.time() if now is None else now
        window = int(now // self.window_s)
        key = f"{RATE_PREFIX}{store}:{window}"
        try:
            async with redis_deadline(self.timeout_s, "the rate limit check"):
                pipe = self.aredis.client().pipeline(transaction=False)
                pipe.incr(key)
                pipe.expire(key, self.window_s + 1, nx=True)
                count = int((await pipe.execute())[0])
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not check the rate limit in Redis: {exc}") from None
        retry_after = max(1, math.ceil((window + 1) * self.window_s - now))
        return RateDecision(count <= self.limit, self.limit, max(0, self.limit - count), retry_after)
