"""Decided copy drafts are kept `DRAFT_RETENTION_DAYS`, then removed: Redis row, decisions, index entry, body.

Every copy job writes a draft, so a store that copies its catalog daily adds a draft per product
per day: without a limit its drafts grow in Redis and in the bucket for ever. A copy draft is
removed when all of these hold (the check and the removal are one script, so a decision made
meanwhile keeps it):

- it was created and last changed (decided, pushed) more than the retention ago;
- it is decided and done: `rejected` (by a person, or set aside by a newer draft), or
  `approved` but no longer live (a newer draft of the product went live after it);
- it is not its product's live draft, and no Shopify push of it waits (`shopify` queued).

Pending drafts wait for a person however old they are. Theme drafts are kept: there is one per
build, and a build's draft is what stops a rejected build from being activated. Feedback from
rejections and edits is kept apart (`pipelines/drafts_feedback.py`) and is not touched.

Each worker process's maintenance pass asks whether it is time; one process of the fleet prunes
every `PRUNE_EVERY_S` (a lock that expires), on a thread of its own (never the heartbeat's: a
bucket's deletes may take a while), `PAGE` drafts of a store at a time. `wandstore-agents drafts
prune` runs it by hand.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from adapters.errors import BrokerUnavailable, NotFound
from adapters.logs import get_logger
from adapters.store import ObjectStore
from domain.drafts import draft_key
from pipelines.drafts import INDEX, PREFIX

log = get_logger("pipelines.drafts_retention")

PRUNE_EVERY_S = 3600.0
PAGE = 500
DAY_S = 86_400.0
_LOCK = "wandstore:drafts-prune:lock"
_MAPS = (":live", ":newest")

# KEYS: row, decisions, index, live map, newest map. ARGV: id, cutoff (Unix seconds).
_PRUNE = """
local row = redis.call('hmget', KEYS[1], 'status', 'kind', 'product_id', 'updated_at', 'shopify')
local status = row[1]
if not status then
  redis.call('zrem', KEYS[3], ARGV[1])
  return 'gone'
end
if row[2] ~= 'copy' then return 'kept' end
if status ~= 'rejected' and status ~= 'approved' then return 'kept' end
if (tonumber(row[4]) or 0) > tonumber(ARGV[2]) then return 'kept' end
if row[5] and string.find(row[5], '"status": *"queued"') then return 'kept' end
local target = 'copy:' .. (row[3] or '')
if redis.call('hget', KEYS[4], target) == ARGV[1] then return 'kept' end
if redis.call('hget', KEYS[5], target) == ARGV[1] then redis.call('hdel', KEYS[5], target) end
redis.call('del', KEYS[1], KEYS[2])
redis.call('zrem', KEYS[3], ARGV[1])
return 'pruned'
"""


@dataclass
class Pruned:
    """What a pass looked at: drafts old enough to be candidates, and those removed, by store."""

    checked: int = 0
    pruned: int = 0
    by_store: dict[str, int] = field(default_factory=dict)


def stores_with_drafts(client: redis.Redis) -> list[str]:
    """Every store that has a draft index (`wandstore:drafts:{store}`)."""
    found = set()
    for key in client.scan_iter(match=INDEX + "*", count=1000):
        name = (key.decode() if isinstance(key, bytes) else key)[len(INDEX) :]
        if ":" not in name:  # not a store's `:live` or `:newest` map
            found.add(name)
    return sorted(found)


def prune(
    client: redis.Redis,
    objects: ObjectStore,
    *,
    older_than_s: float,
    now: float | None = None,
    stores: list[str] | None = None,
    on_store: Callable[[str, int], None] | None = None,
) -> Pruned:
    """Remove the copy drafts decided more than `older_than_s` ago (see the module docstring).

    `on_store(store, stores)` is called as each store's turn begins (a CLI's progress).
    """
    cutoff = (time.time() if now is None else now) - older_than_s
    script = client.register_script(_PRUNE)
    out = Pruned()
    try:
        names = stores if stores is not None else stores_with_drafts(client)
        for store in names:
            if on_store is not None:
                on_store(store, len(names))
            index, start = INDEX + store, 0
            while True:
                ids: list[Any] = list(client.zrangebyscore(index, "-inf", cutoff, start=start, num=PAGE))
                if not ids:
                    break
                kept = 0
                for raw in ids:
                    draft_id = raw.decode() if isinstance(raw, bytes) else str(raw)
                    row = f"{PREFIX}{store}:{draft_id}"
                    keys = [row, row + ":decisions", index, index + _MAPS[0], index + _MAPS[1]]
                    got = script(keys=keys, args=[draft_id, cutoff])
                    outcome = got.decode() if isinstance(got, bytes) else got
                    out.checked += 1
                    if outcome == "kept":
                        kept += 1
                        continue
                    if outcome == "pruned":
                        out.pruned += 1
                        out.by_store[store] = out.by_store.get(store, 0) + 1
                    # After Redis, so a draft is never listed without its body.
                    with contextlib.suppress(NotFound):
                        objects.delete(draft_key(store, draft_id))
                start += kept  # the pruned left the index; the kept stay ahead of the next page
                if len(ids) < PAGE:
                    break
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"could not prune drafts in Redis: {exc}") from None
    return out


def claim(client: redis.Redis) -> bool:
    """True for the one process of the fleet whose turn it is to prune (every `PRUNE_EVERY_S`)."""
    return bool(client.set(_LOCK, "1", nx=True, px=int(PRUNE_EVERY_S * 1000)))


def prune_logged(client: redis.Redis, objects: ObjectStore, *, retention_days: float) -> Pruned | None:
    """`prune` with the retention in days, logged; an error is logged, not raised (a thread's body)."""
    try:
        done = prune(client, objects, older_than_s=retention_days * DAY_S)
    except Exception as exc:  # Redis or the bucket away: the next turn tries again
        log.warning("drafts_prune_failed", error=f"{type(exc).__name__}: {exc}")
        return None
    if done.pruned:
        log.info("drafts_pruned", pruned=done.pruned, checked=done.checked, stores=len(done.by_store))
    return done


__all__ = ["PAGE", "PRUNE_EVERY_S", "Pruned", "claim", "prune", "prune_logged", "stores_with_drafts"]
