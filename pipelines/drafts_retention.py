"""Decided copy drafts are kept `DRAFT_RETENTION_DAYS`, then removed: Redis row, decisions, index entry, body.

Every copy job writes a draft, so a store that copies its catalog daily adds a draft per product
per day: without a limit its drafts grow in Redis and in the bucket for ever. A copy draft is
removed when all of these hold (`Drafts.remove_if_done`: the check and the removal are one
script, so a decision made meanwhile keeps it):

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

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from adapters.logs import get_logger
from adapters.store import ObjectStore
from pipelines.drafts import Drafts

log = get_logger("pipelines.drafts_retention")

PRUNE_EVERY_S = 3600.0
PAGE = 500
DAY_S = 86_400.0
_LOCK = "wandstore:drafts-prune:lock"


@dataclass
class Pruned:
    """What a pass looked at: drafts old enough to be candidates, and those removed, by store."""

    checked: int = 0
    pruned: int = 0
    by_store: dict[str, int] = field(default_factory=dict)


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
    drafts = Drafts(client, objects)
    out = Pruned()
    names = stores if stores is not None else drafts.stores()
    for store in names:
        if on_store is not None:
            on_store(store, len(names))
        start = 0
        while ids := drafts.created_before(store, cutoff, start=start, num=PAGE):
            for draft_id in ids:
                out.checked += 1
                outcome = drafts.remove_if_done(store, draft_id, cutoff)
                if outcome == "kept":
                    start += 1  # still in the index, ahead of the next page
                elif outcome == "removed":
                    out.pruned += 1
                    out.by_store[store] = out.by_store.get(store, 0) + 1
            if len(ids) < PAGE:
                break
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


__all__ = ["PAGE", "PRUNE_EVERY_S", "Pruned", "claim", "prune", "prune_logged"]
