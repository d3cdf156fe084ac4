"""Export and restore the state a Redis restart must not lose: tokens, secrets, budgets, labels, stores.

Values are exported by type (string, hash, set) as text, not with DUMP, so a backup restores
into any Redis or Valkey version. Keys are written back with their remaining TTL.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from adapters.errors import BrokerUnavailable, InvalidInput
from adapters.ledger import BUDGET_DAY, OVERRIDES
from adapters.prompt_labels import EPOCH_KEY
from adapters.prompt_labels import PREFIX as LABELS
from adapters.signing import SECRET_PREFIX
from adapters.stores import DOMAINS as STORE_DOMAINS
from adapters.stores import INDEX as STORES
from adapters.stores import PREFIX as STORE_RECORDS
from adapters.stores import SECRET_PREFIX as STORE_SECRETS
from adapters.tokens import PREFIX as TOKENS
from adapters.tokens import STORE_INDEX

FORMAT = "wandstore-backup/1"
PREFIX = "backups/"

# What each group of keys is, for people reading a backup's summary.
GROUPS: dict[str, str] = {
    TOKENS: "api tokens",
    STORE_INDEX: "api tokens",
    SECRET_PREFIX: "webhook secrets",
    OVERRIDES: "budget overrides",
    BUDGET_DAY: "budget spend today",
    LABELS: "prompt labels",
    STORE_RECORDS: "stores",
    STORES: "stores",
    STORE_DOMAINS: "stores",
    # Sealed with STORE_SECRETS_KEY: a restore needs the same key to use them.
    STORE_SECRETS: "shopify admin tokens",
}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def group_of(key: str) -> str:
    return next((name for prefix, name in GROUPS.items() if key.startswith(prefix)), "other")


@dataclass
class Restored:
    written: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)


def _keys(client: redis.Redis) -> list[str]:
    found: set[str] = set()
    for prefix in GROUPS:
        pattern = prefix if not prefix.endswith(":") else prefix + "*"
        found.update(_text(k) for k in client.scan_iter(match=pattern, count=1000))
    # The label epoch counts moves, it is not state: a restore bumps it instead (workers re-read).
    found.discard(EPOCH_KEY)
    return sorted(found)


def export(client: redis.Redis) -> dict[str, Any]:
    """Every key of the backed-up groups, with its type, value and remaining TTL."""
    entries = []
    try:
        for key in _keys(client):
            kind = _text(client.type(key))
            if kind == "string":
                value: Any = _text(client.get(key))
            elif kind == "hash":
                value = {_text(k): _text(v) for k, v in client.hgetall(key).items()}
                if key.startswith(BUDGET_DAY):
                    # Holds of jobs in flight now would never be released after a restore.
                    value.pop("reserved", None)
            elif kind == "set":
                value = sorted(_text(m) for m in client.smembers(key))
            else:  # gone since the scan, or a type this service never writes under these prefixes
                continue
            ttl_ms = int(client.pttl(key))
            entries.append(
                {"key": key, "type": kind, "value": value, "ttl_ms": ttl_ms if ttl_ms > 0 else None}
            )
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"could not read Redis for the backup: {exc}") from None
    return {"format": FORMAT, "created_at": time.time(), "entries": entries}


def summarize(backup: dict[str, Any]) -> dict[str, int]:
    return dict(sorted(Counter(group_of(e["key"]) for e in backup["entries"]).items()))


def parse(body: bytes) -> dict[str, Any]:
    try:
        backup = json.loads(body)
    except ValueError as exc:
        raise InvalidInput(f"not a backup (invalid JSON: {exc})") from None
    if not isinstance(backup, dict) or backup.get("format") != FORMAT:
        raise InvalidInput(f"not a backup in format {FORMAT!r}")
    for entry in backup.get("entries", []):
        if group_of(str(entry.get("key"))) == "other" or entry.get("type") not in ("string", "hash", "set"):
            raise InvalidInput(f"backup entry {str(entry.get('key'))[:80]!r} is not one this service writes")
    return backup


def restore(client: redis.Redis, backup: dict[str, Any], *, overwrite: bool = False) -> Restored:
    """Write the backup's keys back; keys that exist are kept unless `overwrite`."""
    done = Restored()
    try:
        for entry in backup["entries"]:
            key, kind, value, ttl = entry["key"], entry["type"], entry["value"], entry.get("ttl_ms")
            if not overwrite and client.exists(key):
                done.kept[group_of(key)] += 1
                continue
            pipe = client.pipeline(transaction=True)
            pipe.delete(key)
            if kind == "string":
                pipe.set(key, value)
            elif kind == "hash" and value:
                pipe.hset(key, mapping=value)
            elif kind == "set" and value:
                pipe.sadd(key, *value)
            if ttl:
                pipe.pexpire(key, int(ttl))
            pipe.execute()
            done.written[group_of(key)] += 1
        if done.written["prompt labels"]:
            client.incr(EPOCH_KEY)  # labels moved under the workers: they re-read at their next call
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"could not write the backup into Redis: {exc}") from None
    return done
