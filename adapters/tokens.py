"""Per-store API tokens, kept hashed in Redis, and the ops token from the settings.

A token reads `wst_<id>_<secret>`. Redis holds, under the public id, the store, its scopes
and `sha256(secret)`; the secret itself is shown once, at creation, and never stored or
logged. Verification looks the record up by id, then compares hashes in constant time.

Scopes say what a store's token may do: `read` (statuses, outputs, themes, costs),
`generate` (ask for generations), `publish` (change the live theme: theme builds and
activation) and `catalog` (replace the catalog snapshot, whole-catalog batches). A
storefront needs `read` and `generate`, the default. A token made before scopes existed
has no `scopes` field and gets that default too; `tokens scopes ID --scope ...` widens it.
The ops token has every scope.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from adapters.errors import BrokerUnavailable, InvalidInput, NotFound

PREFIX = "wandstore:api:token:"
STORE_INDEX = "wandstore:api:store-tokens:"
TOKEN_RE = re.compile(r"^wst_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
ID_RE = re.compile(r"^[0-9a-f]{16}$")
OPS = "*"
SCOPES = ("read", "generate", "publish", "catalog")
DEFAULT_SCOPES = ("read", "generate")  # what a storefront needs; also what a scope-less token gets


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: one store, or ops (every store), and what it may do there."""

    store: str  # a store slug, or OPS
    token_id: str
    scopes: frozenset[str] = frozenset(DEFAULT_SCOPES)

    @property
    def is_ops(self) -> bool:
        return self.store == OPS

    def may_access(self, store: str) -> bool:
        return self.is_ops or self.store == store

    def may(self, scope: str) -> bool:
        return self.is_ops or scope in self.scopes


@dataclass(frozen=True)
class CreatedToken:
    token: str
    token_id: str
    store: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES


def check_scopes(scopes: Any) -> tuple[str, ...]:
    """The scopes in their canonical order, or `InvalidInput` naming the unknown one."""
    wanted = set()
    for scope in scopes:
        if scope not in SCOPES:
            raise InvalidInput(f"unknown scope {str(scope)[:40]!r}: scopes are {', '.join(SCOPES)}")
        wanted.add(scope)
    if not wanted:
        raise InvalidInput(f"a token needs at least one scope ({', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in wanted)


def _scopes_of(stored: bytes | str | None) -> frozenset[str]:
    if stored is None:  # a token from before scopes: the storefront's default, never more
        return frozenset(DEFAULT_SCOPES)
    return frozenset(s for s in _text(stored).split(",") if s in SCOPES)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_id_of(token: str) -> str | None:
    """The public id inside a token, or None when it is not shaped like one (safe to log)."""
    match = TOKEN_RE.fullmatch(token)
    return match.group(1) if match else None


class TokenStore:
    """Create, list, revoke and verify API tokens."""

    def __init__(self, client: redis.Redis, ops_token: str | None = None) -> None:
        self.r = client
        self._ops_digest = _digest(ops_token) if ops_token else None

    def create(self, store: str, label: str = "", scopes: Any = DEFAULT_SCOPES) -> CreatedToken:
        granted = check_scopes(scopes)
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        record = {
            "store": store,
            "hash": _digest(secret),
            "created_at": str(time.time()),
            "label": label,
            "scopes": ",".join(granted),
        }
        try:
            pipe = self.r.pipeline()
            pipe.hset(PREFIX + token_id, mapping=record)  # type: ignore[arg-type]
            pipe.sadd(STORE_INDEX + store, token_id)
            pipe.execute()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not store the token in Redis: {exc}") from None
        return CreatedToken(token=f"wst_{token_id}_{secret}", token_id=token_id, store=store, scopes=granted)

    def set_scopes(self, token_id: str, scopes: Any) -> tuple[str, ...]:
        """Replace a token's scopes; the next request it makes is checked against them."""
        granted = check_scopes(scopes)
        if not ID_RE.fullmatch(token_id):
            raise InvalidInput(f"{token_id[:24]!r} is not a token id (16 hex digits, see `tokens list`)")
        try:
            if not self.r.exists(PREFIX + token_id):
                raise NotFound(f"no token with id {token_id} (see `wandstore-agents tokens list STORE`)")
            self.r.hset(PREFIX + token_id, "scopes", ",".join(granted))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not change the token's scopes in Redis: {exc}") from None
        return granted

    def revoke(self, token_or_id: str) -> str:
        """Revoke by token id (or the whole token); returns the store it belonged to."""
        token_id = token_id_of(token_or_id) or token_or_id
        if not ID_RE.fullmatch(token_id):
            raise InvalidInput(f"{token_or_id[:24]!r}… is neither a token id (16 hex digits) nor a token")
        try:
            store = self.r.hget(PREFIX + token_id, "store")
            if store is None:
                raise NotFound(f"no token with id {token_id} (see `wandstore-agents tokens list STORE`)")
            pipe = self.r.pipeline()
            pipe.delete(PREFIX + token_id)
            pipe.srem(STORE_INDEX + _text(store), token_id)
            pipe.execute()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not revoke the token in Redis: {exc}") from None
        return _text(store)

    def list(self, store: str) -> list[dict[str, Any]]:
        try:
            ids = sorted(_text(i) for i in self.r.smembers(STORE_INDEX + store))
            pipe = self.r.pipeline(transaction=False)
            for token_id in ids:
                pipe.hmget(PREFIX + token_id, "created_at", "label", "scopes")
            rows = pipe.execute()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not list tokens in Redis: {exc}") from None
        return [
            {
                "token_id": token_id,
                "created_at": float(_text(created)),
                "label": _text(label or b""),
                "scopes": [s for s in SCOPES if s in _scopes_of(scopes)],
            }
            for token_id, (created, label, scopes) in zip(ids, rows, strict=True)
            if created is not None
        ]

    def is_ops(self, token: str) -> bool:
        """True for the ops token (checked without Redis)."""
        return self._ops_digest is not None and hmac.compare_digest(_digest(token), self._ops_digest)

    def verify(self, token: str) -> Principal | None:
        """The principal a presented token stands for, or None. Constant-time in the secret."""
        if self.is_ops(token):
            return Principal(store=OPS, token_id="ops", scopes=frozenset(SCOPES))
        match = TOKEN_RE.fullmatch(token)
        if match is None:
            return None
        token_id, secret = match.groups()
        try:
            stored = self.r.hmget(PREFIX + token_id, *_FIELDS)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not check the token in Redis: {exc}") from None
        return _principal(token_id, secret, stored)

    async def averify(self, token: str, client: redis.asyncio.Redis) -> Principal | None:
        """`verify` over an asyncio client: the API's event loop never waits on a thread for it."""
        if self.is_ops(token):
            return Principal(store=OPS, token_id="ops", scopes=frozenset(SCOPES))
        match = TOKEN_RE.fullmatch(token)
        if match is None:
            return None
        token_id, secret = match.groups()
        try:
            stored = await client.hmget(PREFIX + token_id, list(_FIELDS))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not check the token in Redis: {exc}") from None
        return _principal(token_id, secret, stored)


_FIELDS = ("store", "hash", "scopes")


def _principal(token_id: str, secret: str, stored: list[Any]) -> Principal | None:
    store, expected, scopes = stored
    # Compare against a dummy for unknown ids too, so timing says nothing either way.
    expected_text = _text(expected) if expected is not None else "0" * 64
    if not hmac.compare_digest(_digest(secret), expected_text) or store is None:
        return None
    return Principal(store=_text(store), token_id=token_id, scopes=_scopes_of(scopes))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
