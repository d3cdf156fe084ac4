"""Hard edges: the request body size limit (413) and the per-store rate limit (429)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.errors import BrokerUnavailable
from entrypoints.api.errors import error_response

RATE_PREFIX = "wandstore:api:rate:"


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413: by Content-Length first, then by counting the stream.

    The body is read here, once, and handed on as one chunk, so a handler never sees a
    truncated body and the limit holds for chunked uploads too.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
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

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "body_too_large",
            f"request body is larger than {self.max_bytes} bytes (API_MAX_BODY_BYTES); "
            "for a large catalog, upload the export to the object store and POST its export_key",
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

    def __init__(self, client: redis.Redis, limit: int, window_s: int) -> None:
        self.r = client
        self.limit = limit
        self.window_s = window_s

    def hit(self, store: str, now: float | None = None) -> RateDecision:
        now = time.time() if now is None else now
        window = int(now // self.window_s)
        key = f"{RATE_PREFIX}{store}:{window}"
        try:
            pipe = self.r.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, self.window_s + 1, nx=True)
            count = int(pipe.execute()[0])
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not check the rate limit in Redis: {exc}") from None
        retry_after = max(1, math.ceil((window + 1) * self.window_s - now))
        return RateDecision(count <= self.limit, self.limit, max(0, self.limit - count), retry_after)
