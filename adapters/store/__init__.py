"""Object stores: R2 in production, a local folder by default; one store per process."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from adapters.settings import Settings
from adapters.store.base import ObjectStore, StoredObject
from adapters.store.local import LocalStore
from adapters.store.r2 import R2Store

__all__ = [
    "LocalStore",
    "ObjectStore",
    "R2Store",
    "StoredObject",
    "open_backup_store",
    "open_store",
    "put_json",
]

_stores: dict[tuple[Any, ...], ObjectStore] = {}
_stores_lock = threading.Lock()


def _cache_key(settings: Settings, backups: bool) -> tuple[Any, ...]:
    # The pid keeps a forked worker from sharing its parent's connection pool.
    if settings.r2_configured:
        assert settings.r2_access_key_id is not None and settings.r2_secret_access_key is not None
        return (
            os.getpid(),
            "r2",
            settings.r2_endpoint,
            settings.r2_backups_bucket if backups else settings.r2_themes_bucket,
            settings.r2_access_key_id.get_secret_value(),
            settings.r2_secret_access_key.get_secret_value(),
        )
    folder = settings.local_backup_dir if backups else settings.local_store_dir
    return (os.getpid(), "local", str(folder.expanduser().resolve()))


def open_backup_store(settings: Settings) -> ObjectStore:
    """Where backups go: the `wandstore-backups` bucket, never the themes bucket the storefront reads."""
    return open_store(settings, backups=True)


def open_store(settings: Settings, *, backups: bool = False) -> ObjectStore:
    """The process's store for `settings`: R2 when its credentials are set, else the local folder."""
    key = _cache_key(settings, backups)
    store = _stores.get(key)
    if store is not None:
        return store
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            if key[1] == "r2":
                # One retry layer: a failed request fails the job's attempt and Dramatiq retries
                # the job with backoff (its finished steps are kept), not boto3 underneath it.
                store = R2Store(
                    bucket=key[3],
                    endpoint_url=key[2],
                    access_key_id=key[4],
                    secret_access_key=key[5],
                    read_timeout=settings.r2_timeout_s,
                    max_attempts=0,
                )
            else:
                store = LocalStore(Path(key[2]))
            _stores[key] = store
    return store


def put_json(
    store: ObjectStore,
    key: str,
    obj: Any,
    *,
    if_none_match: bool = False,
    metadata: dict[str, str] | None = None,
) -> str:
    """Write `obj` as compact UTF-8 JSON (`application/json`) under `key`; return the ETag."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=False).encode()
    return store.put(
        key, body, content_type="application/json", metadata=metadata, if_none_match=if_none_match
    )
