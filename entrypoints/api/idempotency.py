"""`Idempotency-Key`: a retried POST gets the first answer back, not a second job.

The key is scoped to the store and the route, kept 24 h. The first request claims it
(`SET NX`), does its work, then stores its response; a retry with the same body gets that
response (header `Idempotent-Replayed: true`), one with another body gets 422, and one that
arrives while the first is still working gets 409.

The claim lives `pending_ttl_s` and is renewed every third of that while its work runs, so
it outlives any amount of work yet frees itself soon after a crashed process. (With a fixed
60 s claim, a 20,000-product batch took ~59 s to submit and a retry after the claim expired
created a second batch.) Renewal and release compare the claim's own random id first, so
one request never extends or deletes another's claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import redis

from adapters.errors import BrokerUnavailable
from adapters.logs import get_logger
from adapters.redis_conn import AsyncRedis
from entrypoints.api.bulkhead import redis_deadline
from entrypoints.api.errors import ApiError, invalid_field
from entrypoints.api.jsonchunks import canonical_chunks

PREFIX = "wandstore:api:idem:"
TTL_S = 24 * 3600
PENDING_TTL_S = 60.0
KEY_RE = re.compile(r"^[\x20-\x7e]{1,255}$")
log = get_logger("api")

# Extend / delete the key only while it still holds this claim.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def fingerprint(payload: Any) -> str:
    """sha256 of the payload as canonical JSON (sorted keys, no spaces), hashed piece by piece."""
    digest = hashlib.sha256()
    for chunk in canonical_chunks(payload):
        digest.update(chunk.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Claim:
    """A held key: its Redis name, the value that proves it is ours, and the request's fingerprint."""

    name: str
    value: str
    digest: str


class Idempotency:
    """Claim, renew, complete or release idempotency keys in Redis (asyncio client)."""

    def __init__(
        self, client: AsyncRedis, timeout_s: float = 3.0, pending_ttl_s: float = PENDING_TTL_S
    ) -> None:
        self.aredis = client
        self.timeout_s = timeout_s
        self.pending_ttl_s = pending_ttl_s

    @staticmethod
    def _key(scope: str, key: str) -> str:
        return PREFIX + scope + ":" + hashlib.sha256(key.encode()).hexdigest()

    async def begin(self, scope: str, key: str, digest: str) -> Claim | dict[str, Any]:
        """Claim `key` (a `Claim`), or the stored answer when this retries a finished request."""
        if not KEY_RE.fullmatch(key):
            raise invalid_field("Idempotency-Key", "must be 1 to 255 printable ASCII characters", "pattern")
        name = self._key(scope, key)
        value = json.dumps({"fingerprint": digest, "claim": uuid.uuid4().hex})
        ttl_ms = int(self.pending_ttl_s * 1000)
        for _ in range(3):  # a claim that expires between SET and GET is claimed again
            try:
                async with redis_deadline(self.timeout_s, "the Idempotency-Key check"):
                    client = self.aredis.client()
                    if await client.set(name, value, nx=True, px=ttl_ms):
                        return Claim(name, value, digest)
                    raw = await client.get(name)
            except redis.RedisError as exc:
                raise BrokerUnavailable(f"could not check the Idempotency-Key in Redis: {exc}") from None
            if raw is not None:
                return self._stored(json.loads(raw), digest)
        raise BrokerUnavailable("could not claim the Idempotency-Key: it kept changing in Redis")

    @staticmethod
    def _stored(stored: dict[str, Any], digest: str) -> dict[str, Any]:
        if stored.get("fingerprint") != digest:
            raise invalid_field(
                "Idempotency-Key",
                "was already used with a different request body; use a new key for a new request",
                "idempotency_key_reused",
            )
        if "response" not in stored:
            raise ApiError(
                409,
                "conflict",
                "a request with this Idempotency-Key is still being processed; retry shortly",
                headers={"Retry-After": "1"},
            )
        return stored

    @contextlib.asynccontextmanager
    async def renewing(self, claim: Claim) -> AsyncIterator[None]:
        """Keep `claim` alive while the block runs."""
        task = asyncio.create_task(self._renew(claim))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _renew(self, claim: Claim) -> None:
        ttl_ms = int(self.pending_ttl_s * 1000)
        while True:
            await asyncio.sleep(self.pending_ttl_s / 3)
            try:
                async with redis_deadline(self.timeout_s, "renewing an Idempotency-Key"):
                    held = await self.aredis.client().eval(_RENEW, 1, claim.name, claim.value, ttl_ms)
            except (redis.RedisError, BrokerUnavailable) as exc:  # the next tick tries again
                log.warning("idempotency_renew_failed", error=str(exc))
                continue
            if not held:
                log.error("idempotency_claim_lost", key=claim.name)
                return

    async def finish(self, claim: Claim, status: int, response: Any) -> None:
        stored = {"fingerprint": claim.digest, "status": status, "response": response}
        try:
            async with redis_deadline(self.timeout_s, "storing the Idempotency-Key"):
                await self.aredis.client().set(claim.name, json.dumps(stored, default=str), ex=TTL_S)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not store the Idempotency-Key in Redis: {exc}") from None

    async def release(self, claim: Claim) -> None:
        """Forget a claim whose request failed, so the client can retry with the same key."""
        # On a Redis error the claim, no longer renewed, expires by itself within pending_ttl_s.
        with contextlib.suppress(redis.RedisError, BrokerUnavailable):
            async with redis_deadline(self.timeout_s, "releasing an Idempotency-Key"):
                await self.aredis.client().eval(_RELEASE, 1, claim.name, claim.value)
