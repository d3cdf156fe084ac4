"""Signed, expiring links to a theme build's preview: opened in a browser with no API token.

A link is `/share/themes/{store}/{build_id}?expires=<unix>&sig=<base64url>`, where `sig` is
`HMAC-SHA256(secret, "theme-preview\\n{store}\\n{build_id}\\n{expires}")`. Store, build and
expiry are all signed: changing any of them, or waiting past `expires`, makes the link refuse.

The secret is `SHARE_LINK_SECRET` (several, comma-separated, rotate: the first signs, any
verifies); unset, one random secret is made once in Redis, so every API process agrees.
Deleting that key (or changing the setting) revokes every link at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import redis

from adapters.errors import BrokerUnavailable, WandstoreError
from adapters.redis_conn import AsyncRedis

SECRET_KEY = "wandstore:api:share-link-secret"
PURPOSE = "theme-preview"


class ShareLinkError(WandstoreError):
    """A share link that is malformed, expired or not signed by this service."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def signature(secret: str, store: str, build_id: str, expires: int) -> str:
    message = f"{PURPOSE}\n{store}\n{build_id}\n{expires}".encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def sign(
    secrets_: list[str], store: str, build_id: str, ttl_s: int, now: float | None = None
) -> tuple[int, str]:
    """`(expires, sig)` for a link valid `ttl_s` seconds from now, signed with the first secret."""
    expires = int(now if now is not None else time.time()) + int(ttl_s)
    return expires, signature(secrets_[0], store, build_id, expires)


def verify(
    secrets_: list[str],
    store: str,
    build_id: str,
    expires: str | None,
    sig: str | None,
    now: float | None = None,
) -> int:
    """The link's expiry if it is genuine and current; `ShareLinkError` saying why otherwise."""
    if not expires or not sig or not expires.isdigit() or len(expires) > 12 or len(sig) > 100:
        raise ShareLinkError("malformed share link: it needs 'expires' and 'sig' as the API returned them")
    at = int(expires)
    if not any(hmac.compare_digest(signature(s, store, build_id, at), sig) for s in secrets_):
        raise ShareLinkError("share link signature does not match (altered, or signed with a revoked secret)")
    if at <= (now if now is not None else time.time()):
        raise ShareLinkError(f"share link expired at {at} (unix seconds): ask for a new one")
    return at


def split_secrets(configured: str | None) -> list[str]:
    return [s.strip() for s in (configured or "").split(",") if s.strip()]


def _new() -> str:
    return "shl_" + secrets.token_urlsafe(32)


def stored_secret(client: redis.Redis) -> str:
    """The Redis-kept secret, made on first use (every process gets the same one)."""
    try:
        client.set(SECRET_KEY, _new(), nx=True)
        value = client.get(SECRET_KEY)
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"could not read the share link secret from Redis: {exc}") from None
    assert value is not None
    return _text(value)


async def astored_secret(client: AsyncRedis) -> str:
    """`stored_secret` from the event loop (the API)."""
    try:
        await client.execute("SET", SECRET_KEY, _new(), "NX")
        value = await client.execute("GET", SECRET_KEY)
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"could not read the share link secret from Redis: {exc}") from None
    assert value is not None
    return _text(value)
