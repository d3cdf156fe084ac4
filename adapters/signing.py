"""Webhook signatures (`X-Wandstore-Signature`) and the per-store signing secrets.

The header reads `t=<unix seconds>,v1=<hex>` where the hex is
`HMAC-SHA256(secret, f"{t}.{body}")` over the exact request body bytes. The timestamp
is signed too, so a receiver that checks it is recent refuses a replayed delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import redis

from adapters.errors import BrokerUnavailable, WandstoreError

HEADER = "X-Wandstore-Signature"
SECRET_PREFIX = "wandstore:api:webhook-secret:"
DEFAULT_TOLERANCE_S = 300


class SignatureError(WandstoreError):
    """A webhook signature is missing, malformed, stale or wrong."""


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `X-Wandstore-Signature` value for `body`, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, t, body)}"


def verify_signature(
    secret: str, header: str | None, body: bytes, tolerance_s: float = DEFAULT_TOLERANCE_S
) -> int:
    """Check a delivery's signature; return its timestamp or raise `SignatureError` saying why.

    Accepts several `v1=` values (sent while a secret is being rotated); any match passes.
    """
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(f"malformed {HEADER} header: expected 't=<unix>,v1=<hex>'")
    age = abs(time.time() - timestamp)
    if age > tolerance_s:
        raise SignatureError(f"signature timestamp is {age:.0f}s away from now (tolerance {tolerance_s}s)")
    expected = _mac(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("signature does not match the body (wrong secret, or the body was altered)")
    return timestamp


class WebhookSecrets:
    """One signing secret per store in Redis, made by an explicit command, rotatable."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def get(self, store: str) -> str | None:
        """The store's secret, or None: deliveries never make one (a merchant must know it first)."""
        try:
            value = self.r.get(SECRET_PREFIX + store)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the webhook secret from Redis: {exc}") from None
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def get_or_create(self, store: str) -> str:
        """The store's secret, made now if it has none: only explicit commands (`tokens ...`) call this."""
        try:
            self.r.set(SECRET_PREFIX + store, "whsec_" + secrets.token_urlsafe(32), nx=True)
            value = self.r.get(SECRET_PREFIX + store)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the webhook secret from Redis: {exc}") from None
        assert value is not None
        return value.decode() if isinstance(value, bytes) else str(value)

    def rotate(self, store: str) -> str:
        value = "whsec_" + secrets.token_urlsafe(32)
        try:
            self.r.set(SECRET_PREFIX + store, value)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not store the webhook secret in Redis: {exc}") from None
        return value
