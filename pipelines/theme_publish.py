"""Publishing a theme build: every file under its build prefix, then the pointer, last.

Build files are conditional creates (`If-None-Match: *`): a build's files never change
once written. The pointer `themes/{store}/current.json` is a compare-and-swap on its
ETag, so two activations can't lose each other's update, and it only ever names a build
whose `theme.json` (written after every other file) exists: a reader sees the old theme
or the new one, never half of one.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.errors import AlreadyExists, InvalidInput, NotFound, PermanentError, TransientStoreError
from adapters.logs import get_logger
from adapters.store import ObjectStore
from domain.keys import check_build_id, theme_build_prefix, theme_pointer_key
from domain.themes.render import RenderedFile
from pipelines.publish import now_iso

MANIFEST = "theme.json"
POINTER_ATTEMPTS = 8
log = get_logger("pipelines.theme_publish")


def publish_files(objects: ObjectStore, store: str, build_id: str, files: list[RenderedFile]) -> list[str]:
    """Write `files` (theme.json last) under the build prefix; an identical file already there is fine."""
    prefix = theme_build_prefix(store, build_id)
    if not files or files[-1].path != MANIFEST:
        raise ValueError(f"{MANIFEST} must be the last file of a build")
    keys = []
    for f in files:
        key = prefix + f.path
        try:
            objects.put(
                key,
                f.body,
                content_type=f.content_type,
                if_none_match=True,
                metadata={"pipeline": "theme_build", "build-id": build_id},
            )
        except AlreadyExists:
            # A redelivered build re-renders the same bytes from its saved steps.
            if objects.get(key).body != f.body:
                raise PermanentError(
                    f"{key} already exists with different content; a build's files never change"
                ) from None
        keys.append(key)
    return keys


def read_pointer(objects: ObjectStore, store: str) -> tuple[dict[str, Any] | None, str | None]:
    """The current pointer document and its ETag, or (None, None) when the store has no theme yet."""
    try:
        obj = objects.get(theme_pointer_key(store))
    except NotFound:
        return None, None
    return obj.json(), obj.etag


def activate(objects: ObjectStore, store: str, build_id: str, *, reason: str = "build") -> dict[str, Any]:
    """Point `themes/{store}/current.json` at a published build (compare-and-swap); returns the pointer."""
    check_build_id(build_id)
    prefix = theme_build_prefix(store, build_id)
    if not objects.exists(prefix + MANIFEST):
        raise InvalidInput(
            f"build {build_id!r} of store {store!r} is not published ({prefix}{MANIFEST} does not exist); "
            f"`wandstore-agents themes list {store}` shows the published builds"
        )
    key = theme_pointer_key(store)
    for _ in range(POINTER_ATTEMPTS):
        current, etag = read_pointer(objects, store)
        pointer = {
            "store": store,
            "build_id": build_id,
            "theme": prefix + MANIFEST,
            "prefix": prefix,
            "activated_at": now_iso(),
            "reason": reason,
            "previous_build_id": (current or {}).get("build_id"),
        }
        body = json.dumps(pointer, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            if etag is None:
                objects.put(key, body, content_type="application/json", if_none_match=True)
            else:
                objects.put(key, body, content_type="application/json", if_match=etag)
        except (AlreadyExists, NotFound):
            continue  # someone moved the pointer meanwhile: read it again
        log.info("theme_activated", store=store, build_id=build_id, previous=pointer["previous_build_id"])
        return pointer
    raise TransientStoreError(
        f"{key} kept changing during {POINTER_ATTEMPTS} attempts to activate {build_id}"
    )


def list_builds(objects: ObjectStore, store: str) -> list[dict[str, Any]]:
    """Every published build of `store`, newest first, with the current one marked."""
    current, _ = read_pointer(objects, store)
    current_id = (current or {}).get("build_id")
    rows = []
    for key in objects.list(f"themes/{store}/builds/"):
        if not key.endswith("/" + MANIFEST) or key.count("/") != 4:
            continue
        doc = objects.get(key).json()
        meta = doc.get("meta", {})
        rows.append(
            {
                "build_id": doc.get("build_id"),
                "generated_at": meta.get("generated_at"),
                "current": doc.get("build_id") == current_id,
                "sections": len(doc.get("sections", [])),
                "cost_usd": meta.get("cost_usd"),
                "approved": doc.get("review", {}).get("approved"),
                "brief": (doc.get("brief", {}).get("description") or "")[:60],
                "preview": key[: -len(MANIFEST)] + "preview.html",
            }
        )
    rows.sort(key=lambda r: r["generated_at"] or "", reverse=True)
    return rows
