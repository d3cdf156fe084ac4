"""What catalog sync and product webhooks share in Redis: a sync's lock, staged edits, debounce tokens.

- `wandstore:catalog:syncing:{store}`: the job id of the sync writing the store's snapshot
  (expires unless renewed, so a killed sync does not block the store for ever);
- `wandstore:catalog:pending:{store}`: product edits from webhooks waiting to be folded into
  the snapshot (product id -> row, skip entry, or a deletion), so a burst of edits is one write;
- `wandstore:catalog:apply-due:{store}`: set while a fold is scheduled;
- `wandstore:catalog:product:{store}:{id}`: the product as the last webhook sent it, and
  `wandstore:catalog:regen:{store}:{id}`: the token of the one copy regeneration still due
  (a newer edit replaces the token, so only the last of a burst generates);
- `wandstore:shopify:webhook:{id}`: an `X-Shopify-Webhook-Id` already received.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis

from adapters.errors import BrokerUnavailable

SYNC_LOCK = "wandstore:catalog:syncing:"
PENDING = "wandstore:catalog:pending:"
PENDING_AT = "wandstore:catalog:pending-at:"
DELETED = "wandstore:catalog:deleted:"
APPLY_DUE = "wandstore:catalog:apply-due:"
PRODUCT = "wandstore:catalog:product:"
REGEN = "wandstore:catalog:regen:"
WEBHOOK_SEEN = "wandstore:shopify:webhook:"

SYNC_LOCK_TTL_MS = 10 * 60 * 1000  # renewed every page; a dead sync frees the store within this
PRODUCT_TTL_S = 2 * 24 * 3600
WEBHOOK_SEEN_TTL_S = 3 * 24 * 3600  # Shopify retries a delivery for up to 48 hours
DELETED_TTL_S = 3 * 24 * 3600  # a late update of a deleted product is ignored this long

# Delete a key only while it still holds our value (a lock or a token).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Keep a product's payload unless the one kept is newer (webhooks may arrive out of order).
# KEYS: the product's hash. ARGV: payload, its updated_at in epoch seconds ('' if unknown), ttl.
_KEEP = """
local kept = redis.call('hget', KEYS[1], 'at')
if kept and kept ~= '' and ARGV[2] ~= '' and tonumber(kept) > tonumber(ARGV[2]) then return 0 end
redis.call('hset', KEYS[1], 'product', ARGV[1], 'at', ARGV[2])
redis.call('expire', KEYS[1], ARGV[3])
return 1
"""
# Stage one product's edit unless the one staged is newer. KEYS: staged edits, their times.
# ARGV: product id, the edit (JSON), its updated_at in epoch seconds ('' unknown; 1e18 a deletion).
_STAGE = """
local staged = redis.call('hget', KEYS[2], ARGV[1])
if staged and staged ~= '' and ARGV[3] ~= '' and tonumber(staged) > tonumber(ARGV[3]) then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('hset', KEYS[2], ARGV[1], ARGV[3])
return 1
"""
# Take the staged edits at once: edits that arrive after this are the next fold's.
_TAKE = """
local all = redis.call('hgetall', KEYS[1])
redis.call('del', KEYS[1], KEYS[2])
return all
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class CatalogState:
    """The Redis side of keeping a store's snapshot current."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._release = client.register_script(_RELEASE)
        self._take = client.register_script(_TAKE)
        self._stage = client.register_script(_STAGE)
        self._keep = client.register_script(_KEEP)

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not {what} in Redis: {exc}") from None

    # --- the sync's lock ----------------------------------------------------------------

    def lock_sync(self, store: str, job_id: str) -> str | None:
        """Take the store's sync lock for `job_id`; returns the job holding it when another does."""
        key = SYNC_LOCK + store

        def take() -> str | None:
            if self.r.set(key, job_id, nx=True, px=SYNC_LOCK_TTL_MS):
                return None
            holder = self.r.get(key)
            if holder is not None and _text(holder) == job_id:  # a redelivered sync: it is ours
                self.r.pexpire(key, SYNC_LOCK_TTL_MS)
                return None
            return _text(holder) if holder is not None else self.lock_sync(store, job_id)

        result: str | None = self._call("take the sync lock", take)
        return result

    def renew_sync(self, store: str, job_id: str) -> None:
        self._call(
            "renew the sync lock", lambda: self.r.set(SYNC_LOCK + store, job_id, xx=True, px=SYNC_LOCK_TTL_MS)
        )

    def unlock_sync(self, store: str, job_id: str) -> None:
        self._call("release the sync lock", lambda: self._release(keys=[SYNC_LOCK + store], args=[job_id]))

    def sync_running(self, store: str) -> str | None:
        holder = self._call("read the sync lock", lambda: self.r.get(SYNC_LOCK + store))
        return _text(holder) if holder is not None else None

    # --- staged edits ---------------------------------------------------------------------

    def stage(self, store: str, product_id: str, change: dict[str, Any] | None, at: float | None) -> bool:
        """Stage one product's edit (a row, a skip entry, or None: deleted); False when a newer one is.

        `at` is the edit's `updated_at` in epoch seconds (None: unknown). A deletion outranks every
        edit, and for a few days after it an edit of that product is ignored (it can only be late).
        """
        if change is None:
            when: str = "1e18"  # after any real time
            self._call(
                "remember the deletion",
                lambda: self.r.set(f"{DELETED}{store}:{product_id}", "1", ex=DELETED_TTL_S),
            )
        elif self._call("read the deletions", lambda: self.r.exists(f"{DELETED}{store}:{product_id}")):
            return False
        else:
            when = repr(at) if at is not None else ""
        keys = [PENDING + store, PENDING_AT + store]
        staged = self._call(
            "stage a product edit",
            lambda: self._stage(keys=keys, args=[product_id, json.dumps(change), when]),
        )
        return bool(staged)

    def take_staged(self, store: str) -> dict[str, dict[str, Any] | None]:
        keys = [PENDING + store, PENDING_AT + store]
        flat = self._call("take the staged edits", lambda: self._take(keys=keys))
        return {_text(flat[i]): json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}

    def restage(self, store: str, changes: dict[str, dict[str, Any] | None]) -> None:
        """Put edits back after a failed fold; an edit staged since then is newer and stays."""

        def put_back() -> None:
            pipe = self.r.pipeline(transaction=False)
            for pid, change in changes.items():
                pipe.hsetnx(PENDING + store, pid, json.dumps(change))
            pipe.execute()

        self._call("stage the edits again", put_back)

    def has_staged(self, store: str) -> bool:
        return bool(self._call("read the staged edits", lambda: self.r.exists(PENDING + store)))

    def claim_apply(self, store: str, ttl_ms: int) -> bool:
        """True when no fold is scheduled yet (the caller schedules one)."""
        return bool(
            self._call(
                "schedule a fold", lambda: self.r.set(APPLY_DUE + store, "1", nx=True, px=max(ttl_ms, 1000))
            )
        )

    def apply_started(self, store: str) -> None:
        self._call("start a fold", lambda: self.r.delete(APPLY_DUE + store))

    # --- the product as last sent, and the debounced regeneration ---------------------------

    def keep_product(self, store: str, product_id: str, product: dict[str, Any], at: float | None) -> None:
        """Keep the product as last sent, unless what is kept was updated later (`at`: epoch seconds)."""
        key = f"{PRODUCT}{store}:{product_id}"
        self._call(
            "keep the product",
            lambda: self._keep(
                keys=[key], args=[json.dumps(product), at if at is not None else "", PRODUCT_TTL_S]
            ),
        )

    def product(self, store: str, product_id: str) -> dict[str, Any] | None:
        raw = self._call("read the product", lambda: self.r.hget(f"{PRODUCT}{store}:{product_id}", "product"))
        return json.loads(raw) if raw else None

    def forget_product(self, store: str, product_id: str) -> None:
        keys = (f"{PRODUCT}{store}:{product_id}", f"{REGEN}{store}:{product_id}")
        self._call("forget the product", lambda: self.r.delete(*keys))

    def regen_due(self, store: str, product_id: str, ttl_s: float) -> str:
        """A new token for the product's regeneration; any earlier one is now superseded."""
        token = uuid.uuid4().hex
        key = f"{REGEN}{store}:{product_id}"
        self._call(
            "schedule a regeneration", lambda: self.r.set(key, token, px=int(ttl_s * 1000) + PRODUCT_TTL_S)
        )
        return token

    def take_regen(self, store: str, product_id: str, token: str) -> bool:
        """True (once) when `token` is still the product's latest: this regeneration runs."""
        key = f"{REGEN}{store}:{product_id}"
        return bool(self._call("claim a regeneration", lambda: self._release(keys=[key], args=[token])))

    # --- webhook deliveries already received -------------------------------------------

    def first_delivery(self, webhook_id: str) -> bool:
        """True the first time Shopify's `X-Shopify-Webhook-Id` is seen (within three days)."""
        key = WEBHOOK_SEEN + webhook_id
        return bool(
            self._call("record the webhook", lambda: self.r.set(key, "1", nx=True, ex=WEBHOOK_SEEN_TTL_S))
        )

    def forget_delivery(self, webhook_id: str) -> None:
        """Undo `first_delivery` (the event could not be queued; Shopify's retry must get through)."""
        self._call("forget the webhook", lambda: self.r.delete(WEBHOOK_SEEN + webhook_id))
