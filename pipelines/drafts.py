"""Drafts kept: the body in the object store, the state and the per-store index in Redis.

A draft's body (what the model proposed, its checks, meta, and what it is diffed against) is
written once, with `If-None-Match: *`, at `stores/{store}/drafts/{id}.json`, so a redelivered
job writes it once; `get` works out a copy draft's diff when it is read. What changes
afterwards (status, decisions, the approved content, the Shopify push)
lives in Redis, where a transition is one atomic script:

- `wandstore:draft:{store}:{id}` hash: kind, status, product_id, build_id, created_at,
  updated_at, checks_passed, prompt_ref, final (approved content, JSON), shopify (JSON);
- `wandstore:draft:{store}:{id}:decisions` list of JSON decisions (who, when, what changed);
- `wandstore:drafts:{store}` sorted set of ids by creation time (listing, newest first);
- `wandstore:drafts:{store}:live` hash: target (`copy:{product_id}` or `theme`) -> the live draft;
- `wandstore:drafts:{store}:newest` hash: a product's newest copy draft (an older one still
  pending is superseded: the review queue holds one draft per product).

Every key names the store: one store's drafts are never listed, read or decided through another's.
Copy drafts decided and done long ago are removed whole by `remove_if_done`, which
pipelines/drafts_retention.py calls on a schedule.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from adapters.errors import AlreadyExists, BrokerUnavailable, NotFound, WandstoreError
from adapters.store import ObjectStore, put_json
from domain.drafts import check_draft_id, draft_key, present_copy
from domain.keys import check_store

PREFIX = "wandstore:draft:"
INDEX = "wandstore:drafts:"
LIST_LIMIT = 500
_JSON = ("final", "shopify", "feedback")


class DraftNotFound(NotFound):
    """No draft with that id in that store."""


class DraftConflict(WandstoreError):
    """A transition the draft's status does not allow (approve a rejected draft, ...)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _row(store: str, draft_id: str) -> str:
    return f"{PREFIX}{store}:{draft_id}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def target_of(kind: str, product_id: str | None) -> str:
    return f"copy:{product_id}" if kind == "copy" else "theme"


# Move a draft from one of the allowed statuses to another, and record the decision, at once.
# KEYS: row, decisions, live map. ARGV: allowed (comma list), new status, now, decision JSON
# ('' for none), target, make live ('1'/'0'), final JSON ('' keeps it), then more fields to set
# (name, value, ...) on success.
_MOVE = """
local status = redis.call('hget', KEYS[1], 'status')
if not status then return {'missing', ''} end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == status then allowed = true end end
if not allowed then return {'refused', status} end
local previous = ''
if ARGV[6] == '1' then
  previous = redis.call('hget', KEYS[3], ARGV[5]) or ''
  local mine = string.match(KEYS[1], ':([^:]+)$')
  if previous ~= '' and previous ~= mine then
    local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #mine)
    if redis.call('hget', prefix .. previous, 'status') == 'live' then
      redis.call('hset', prefix .. previous, 'status', 'approved', 'updated_at', ARGV[3])
    end
  end
  redis.call('hset', KEYS[3], ARGV[5], mine)
end
redis.call('hset', KEYS[1], 'status', ARGV[2], 'updated_at', ARGV[3])
if ARGV[7] ~= '' then redis.call('hset', KEYS[1], 'final', ARGV[7]) end
if #ARGV > 7 then redis.call('hset', KEYS[1], unpack(ARGV, 8)) end
if ARGV[4] ~= '' then redis.call('rpush', KEYS[2], ARGV[4]) end
return {'ok', status, previous}
"""


# A new draft's row and its place in the index, once, recorded (target not '') as its target's
# newest draft, with what the caller decides on next. KEYS: row, index, newest map. ARGV: id,
# created, target, fields... Returns {created (1/0), the draft's status, the older draft to
# supersede or ''}. A draft that exists (a redelivered job) is neither indexed again nor recorded
# as the newest, and supersedes nothing. The older draft (the target's newest before this one)
# is named only when it is still pending and not `auto` (on its way live itself: concurrent
# jobs); the caller's move re-checks.
_PROPOSE = """
if redis.call('hexists', KEYS[1], 'kind') == 1 then
  return {0, redis.call('hget', KEYS[1], 'status') or '', ''}
end
redis.call('hset', KEYS[1], unpack(ARGV, 4))
redis.call('zadd', KEYS[2], ARGV[2], ARGV[1])
if ARGV[3] == '' then return {1, 'pending', ''} end
local older = redis.call('hget', KEYS[3], ARGV[3]) or ''
redis.call('hset', KEYS[3], ARGV[3], ARGV[1])
if older ~= '' and older ~= ARGV[1] then
  local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[1])
  local row = redis.call('hmget', prefix .. older, 'status', 'auto')
  if row[1] == 'pending' and row[2] ~= '1' then return {1, 'pending', older} end
end
return {1, 'pending', ''}
"""


# Remove a copy draft's row if it is decided and done, decided before a cutoff
# (pipelines/drafts_retention.py): rejected, or approved and no longer live; not its product's live
# draft; no Shopify push waiting. KEYS: row, decisions, live map, newest map. ARGV: id, cutoff (Unix
# seconds). Returns 'removed', 'kept', or 'gone' (no row: an earlier pass removed it). The index
# entry stays: the caller drops it after the body, so a pass cut short finds it again.
_REMOVE_DONE = """
local row = redis.call('hmget', KEYS[1], 'status', 'kind', 'product_id', 'updated_at', 'shopify')
local status = row[1]
if not status then return 'gone' end
if row[2] ~= 'copy' then return 'kept' end
if status ~= 'rejected' and status ~= 'approved' then return 'kept' end
if (tonumber(row[4]) or 0) > tonumber(ARGV[2]) then return 'kept' end
if row[5] and string.find(row[5], '"status": *"queued"') then return 'kept' end
local target = 'copy:' .. (row[3] or '')
if redis.call('hget', KEYS[3], target) == ARGV[1] then return 'kept' end
if redis.call('hget', KEYS[4], target) == ARGV[1] then redis.call('hdel', KEYS[4], target) end
redis.call('del', KEYS[1], KEYS[2])
return 'removed'
"""


@dataclass
class Proposal:
    created: bool  # False: the draft existed already (a redelivered job)
    status: str  # the draft's status now
    older: str | None  # the target's older draft, pending and not auto: the caller supersedes it


@dataclass
class Moved:
    before: str
    replaced: str | None  # the draft that was live for the same target before this one


class Drafts:
    """Write, read, list and move drafts of every store (each call names its store)."""

    def __init__(self, client: redis.Redis, objects: ObjectStore) -> None:
        self.r = client
        self.objects = objects
        self._move = client.register_script(_MOVE)
        self._propose = client.register_script(_PROPOSE)
        self._remove_done: Any = None  # registered on first use: only retention removes

    # --- writing ----------------------------------------------------------------------

    def create(self, draft: dict[str, Any]) -> bool:
        """Keep a new draft (status `pending`); False when it exists already (a redelivered job)."""
        return self.propose(draft, "").created

    def propose(self, draft: dict[str, Any], target: str) -> Proposal:
        """`create`, and (`target` not empty) the target's newest-draft record, in one script.

        Keeps a new draft (status `pending`) and records it as `target`'s newest; says whether it
        was new, its status (a redelivered job's draft may be live or decided already) and the
        older draft of `target` to supersede (still pending, not `auto`), if any.
        """
        store, draft_id = check_store(draft["store"]), check_draft_id(draft["id"])
        # An earlier attempt may have written the body already; its row may still be missing.
        with contextlib.suppress(AlreadyExists):
            put_json(self.objects, draft_key(store, draft_id), draft, if_none_match=True)
        try:
            got = self._propose(
                keys=[_row(store, draft_id), INDEX + store, f"{INDEX}{store}:newest"],
                args=[draft_id, str(draft["created_ts"]), target, *_fields(draft)],
            )
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record the draft in Redis: {exc}") from None
        older = _text(got[2]) if got[2] else ""
        return Proposal(created=bool(got[0]), status=_text(got[1]), older=older or None)

    def move(
        self,
        store: str,
        draft_id: str,
        *,
        allowed: tuple[str, ...],
        to: str,
        decision: dict[str, Any] | None = None,
        live_target: str | None = None,
        final: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Moved:
        """Change the status if it is one of `allowed`; `live_target` makes it the target's live draft.

        `fields` are state fields set with it (as `set_fields` would, in the same script).
        """
        row = _row(store, draft_id)
        args = [
            ",".join(allowed),
            to,
            str(time.time()),
            json.dumps(decision, ensure_ascii=False) if decision else "",
            live_target or "",
            "1" if live_target else "0",
            json.dumps(final, ensure_ascii=False) if final is not None else "",
            *[x for kv in _encoded(fields or {}).items() for x in kv],
        ]
        try:
            got = self._move(keys=[row, row + ":decisions", f"{INDEX}{store}:live"], args=args)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not update the draft in Redis: {exc}") from None
        outcome, status = _text(got[0]), _text(got[1])
        if outcome == "missing":
            raise DraftNotFound(f"store {store!r} has no draft {draft_id!r}")
        if outcome == "refused":
            raise DraftConflict(
                status,
                f"draft {draft_id} is {status}; only a draft that is {'/'.join(allowed)} can become {to}",
            )
        replaced = _text(got[2]) if len(got) > 2 and got[2] else None
        return Moved(before=status, replaced=replaced if replaced and replaced != draft_id else None)

    def set_fields(
        self, store: str, draft_id: str, decision: dict[str, Any] | None = None, **fields: Any
    ) -> None:
        """Set state fields (JSON for `shopify`, `final`, `feedback`) of an existing draft; with a
        `decision`, its entry too, in one transaction: a reader sees both or neither."""
        row = _row(store, draft_id)
        encoded = _encoded(fields)
        encoded["updated_at"] = str(time.time())
        pipe = self.r.pipeline(transaction=decision is not None)
        pipe.hset(row, mapping=encoded)  # type: ignore[arg-type]
        if decision is not None:
            pipe.rpush(row + ":decisions", json.dumps(decision, ensure_ascii=False))
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not update the draft in Redis: {exc}") from None

    # --- reading ----------------------------------------------------------------------

    def state(self, store: str, draft_id: str) -> dict[str, Any]:
        """The draft's Redis state (no body); `DraftNotFound` when the store has no such draft."""
        check_store(store)
        check_draft_id(draft_id)
        try:
            raw = self.r.hgetall(_row(store, draft_id))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the draft from Redis: {exc}") from None
        if not raw or (b"kind" not in raw and "kind" not in raw):
            raise DraftNotFound(f"store {store!r} has no draft {draft_id!r}")
        return _decode(draft_id, raw)

    def get(self, store: str, draft_id: str) -> dict[str, Any]:
        """The whole draft: its body from the object store, its state and decisions from Redis."""
        state = self.state(store, draft_id)
        try:
            body = self.objects.get(draft_key(store, draft_id)).json()
        except NotFound:
            raise DraftNotFound(f"store {store!r} has no draft {draft_id!r} (its body is gone)") from None
        try:
            decisions = [json.loads(d) for d in self.r.lrange(_row(store, draft_id) + ":decisions", 0, -1)]
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the draft's decisions from Redis: {exc}") from None
        body.pop("created_ts", None)
        body.update(
            status=state["status"],
            updated_at=state["updated_at"],
            decisions=decisions,
        )
        if state.get("final") is not None:
            body["final"] = state["final"]
        if body["kind"] == "copy":
            body = present_copy(body)
            body["shopify"] = state.get("shopify") or {"status": "off"}
        if state.get("feedback") is not None:
            body["feedback"] = state["feedback"]
        return body

    def list(
        self,
        store: str,
        *,
        kind: str | None = None,
        status: str | None = None,
        product: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The store's drafts, newest first, filtered; at most `limit` rows (states, no bodies)."""
        check_store(store)
        limit = max(1, min(limit, LIST_LIMIT))
        out: list[dict[str, Any]] = []
        start, page = 0, 200
        try:
            while len(out) < limit:
                found: list[Any] = self.r.zrevrange(INDEX + store, start, start + page - 1)
                ids = [_text(i) for i in found]
                if not ids:
                    break
                pipe = self.r.pipeline(transaction=False)
                for draft_id in ids:
                    pipe.hgetall(_row(store, draft_id))
                for draft_id, raw in zip(ids, pipe.execute(), strict=True):
                    if not raw:
                        continue
                    row = _decode(draft_id, raw)
                    if (kind and row["kind"] != kind) or (status and row["status"] != status):
                        continue
                    if product and row.get("product_id") != product:
                        continue
                    out.append(row)
                    if len(out) >= limit:
                        break
                start += page
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not list drafts in Redis: {exc}") from None
        return out

    # --- retention (pipelines/drafts_retention.py) ------------------------------------------

    def stores(self) -> builtins.list[str]:
        """Every store that has drafts."""
        found = set()
        try:
            for key in self.r.scan_iter(match=INDEX + "*", count=1000):
                name = _text(key)[len(INDEX) :]
                if ":" not in name:  # not a store's `:live` or `:newest` map
                    found.add(name)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not list the stores with drafts in Redis: {exc}") from None
        return sorted(found)

    def created_before(self, store: str, cutoff: float, *, start: int, num: int) -> builtins.list[str]:
        """Ids of the store's drafts created before `cutoff`, oldest first, `num` from `start`."""
        try:
            found: Any = self.r.zrangebyscore(INDEX + store, "-inf", cutoff, start=start, num=num)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not list drafts in Redis: {exc}") from None
        return [_text(i) for i in found]

    def remove_if_done(self, store: str, draft_id: str, decided_before: float) -> str:
        """Remove a copy draft decided and done before `decided_before`: 'removed', 'kept' or 'gone'.

        The row goes first (`_REMOVE_DONE`), so no listed draft lacks its body; then the body;
        then the index entry. A pass cut short after the row (the bucket away, a crash) leaves
        the entry, and the next pass finds it 'gone' and deletes the body: none is orphaned.
        """
        if self._remove_done is None:
            self._remove_done = self.r.register_script(_REMOVE_DONE)
        row, index = _row(store, draft_id), INDEX + store
        keys = [row, row + ":decisions", index + ":live", index + ":newest"]
        try:
            outcome = _text(self._remove_done(keys=keys, args=[draft_id, decided_before]))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not remove the draft in Redis: {exc}") from None
        if outcome == "kept":
            return outcome
        with contextlib.suppress(NotFound):
            self.objects.delete(draft_key(store, draft_id))
        try:
            self.r.zrem(index, draft_id)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not remove the draft's index entry in Redis: {exc}") from None
        return outcome


def _encoded(fields: dict[str, Any]) -> dict[str, str]:
    return {k: json.dumps(v, ensure_ascii=False) if k in _JSON else str(v) for k, v in fields.items()}


def _fields(draft: dict[str, Any]) -> list[str]:
    """A new draft's row: field, value, field, value, ..."""
    fields = {
        "kind": draft["kind"],
        "status": "pending",
        "product_id": draft.get("product_id") or "",
        "build_id": draft.get("build_id") or "",
        "job_id": draft.get("job_id") or "",
        "created_at": str(draft["created_ts"]),
        "updated_at": str(draft["created_ts"]),
        "checks_passed": "1" if all(c["passed"] for c in draft["checks"]) else "0",
        # Goes live on its own (policy auto, checks passed): never set aside as superseded.
        "auto": "1" if draft.get("auto") else "0",
        "prompt_ref": str(draft["meta"].get("prompt_ref") or ""),
        "shopify": json.dumps(draft.get("shopify") or {"status": "off"}) if draft["kind"] == "copy" else "",
    }
    return [x for kv in fields.items() for x in kv]


def _decode(draft_id: str, raw: dict[Any, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": draft_id}
    for k, v in raw.items():
        key, text = _text(k), _text(v)
        if key in _JSON:
            row[key] = json.loads(text) if text else None
        elif key in ("created_at", "updated_at"):
            row[key] = float(text)
        elif key in ("checks_passed", "auto"):
            row[key] = text == "1"
        else:
            row[key] = text or None
    if row.get("kind") != "copy":
        row.pop("shopify", None)
    return row
