"""`Idempotency-Key`: a retried POST gets the first answer back, not a second job.

The key is scoped to the store and the route, kept 24 h. The first request claims it
(`SET NX`), does its work, then stores its response; a retry with the same body gets that
response (header `Idempotent-Replayed: true`), one with another body gets 422, and one that
arrives while the first is still working gets 409.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from typing import Any

import redis

from adapters.errors import BrokerUnavailable
from entrypoints.api.errors import ApiError, invalid_field

PREFIX = "wandstore:api:idem:"
TTL_S = 24 * 3600
PENDING_TTL_S = 60
KEY_RE = re.compile(r"^[\x20-\x7e]{1,255}$")


def fingerprint(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Idempotency:
    """Claim, complete or release idempotency keys in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    @staticmethod
    def _key(scope: str, key: str) -> str:
        return PREFIX + scope + ":" + hashlib.sha256(key.encode()).hexdigest()

    def begin(self, scope: str, key: str, digest: str) -> dict[str, Any] | None:
        """Claim `key`; return the stored response when this is a retry of a finished request."""
        if not KEY_RE.fullmatch(key):
            raise invalid_field("Idempotency-Key", "must be 1 to 255 printable ASCII characters", "pattern")
        name = self._key(scope, key)
        try:
            claimed = self.r.set(name, json.dumps({"fingerprint": digest}), nx=True, ex=PENDING_TTL_S)
            raw = None if claimed else self.r.get(name)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not check the Idempotency-Key in Redis: {exc}") from None
        if claimed:
            return None
        if raw is None:  # expired between the two calls: claim again
            return self.begin(scope, key, digest)
        stored = json.loads(raw)
        if stored.get("fingerprint") != digest:
            raise invalid_field(
                "Idempotency-Key",
                "was already used with a different request body; use a new key for a new request",
                "idempotency_key_reused",
            )
        if "response" not in stored:
            raise ApiError(
                409, "conflict", "a request with this Idempotency-Key is still being processed; retry shortly"
            )
        return dict(stored)

    def finish(self, scope: str, key: str, digest: str, status: int, response: Any) -> None:
        stored = {"fingerprint": digest, "status": status, "response": response}
        try:
            self.r.set(self._key(scope, key), json.dumps(stored, default=str), ex=TTL_S)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not store the Idempotency-Key in Redis: {exc}") from None

    def release(self, scope: str, key: str) -> None:
        """Forget a claim whose request failed, so the client can retry with the same key."""
        # On a Redis error the pending claim still expires by itself within PENDING_TTL_S.
        with contextlib.suppress(redis.RedisError):
            self.r.delete(self._key(scope, key))
