"""After the gate: a `/v1/stores/{store}/...` request for a store nobody added is a 404 naming `stores add`.

Only `PUT /v1/stores/{store}`, which adds one, passes for an unknown store. A typo in a slug
is an error, not a new and empty store.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.errors import BrokerUnavailable
from adapters.redis_conn import AsyncRedis
from adapters.stores import StoreRegistry, how_to_add
from domain.keys import STORE_RE
from entrypoints.api.bulkhead import redis_deadline
from entrypoints.api.errors import error_response

_STORE_PATH = re.compile(r"^/v1/stores/([^/]+)(/.*)?$")


class KnownStores:
    """404 `unknown_store` for a path naming a store that was never added."""

    def __init__(self, app: ASGIApp, aredis: AsyncRedis, timeout_s: float) -> None:
        self.app = app
        self.aredis = aredis
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _STORE_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if match is None or not STORE_RE.fullmatch(match.group(1)):
            await self.app(scope, receive, send)
            return
        store, rest = match.group(1), match.group(2)
        if scope["method"] == "PUT" and not rest:
            await self.app(scope, receive, send)  # adding the store
            return
        try:
            async with redis_deadline(self.timeout_s, "the store check"):
                known = await StoreRegistry.aexists(self.aredis.client(), store)
        except BrokerUnavailable:
            response = error_response(
                503, "unavailable", "Redis is unavailable; retry after 5s", headers={"Retry-After": "5"}
            )
            await response(scope, receive, send)
            return
        if not known:
            await error_response(404, "unknown_store", how_to_add(store))(scope, receive, send)
            return
        await self.app(scope, receive, send)
