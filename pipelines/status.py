"""Job status in Redis: what `status ID`, the API and the demo read.

`wandstore:job:<id>` is the job's hash. `wandstore:jobs:open` indexes the jobs not yet ended
(queued, running, retrying), scored by when they were last written or checked: the lost-job
check (pipelines/lost_jobs.py) reads its oldest members and never scans every job.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from adapters.errors import BrokerUnavailable
from adapters.pipeline_names import canonical

PREFIX = "wandstore:job:"
OPEN = "wandstore:jobs:open"
TTL_S = 7 * 24 * 3600
OPEN_STATES = ("queued", "running", "retrying")
_JSON_FIELDS = ("output_keys", "meta", "deliveries")


def _key(job_id: str) -> str:
    return PREFIX + job_id


def _encode(fields: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in fields.items():
        if v is None:
            continue
        out[k] = json.dumps(v) if k in _JSON_FIELDS or isinstance(v, (dict, list)) else str(v)
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# A job's start in one round trip: count the attempt, mark it running, keep it in the open index.
# KEYS: job hash, open index. ARGV: ttl, job id, now, then field/value pairs.
_START = """
redis.call('hincrby', KEYS[1], 'attempts', 1)
redis.call('hset', KEYS[1], unpack(ARGV, 4))
redis.call('expire', KEYS[1], ARGV[1])
redis.call('zadd', KEYS[2], ARGV[3], ARGV[2])
return 1
"""

# A job's end in one round trip: its final fields, its batch's count (a set, so a redelivery
# counts once) and what the worker needs to queue its webhook. KEYS: job hash, open index. ARGV:
# ttl, outcome, other outcome, batch key prefix, batch ttl, job id, then field/value pairs. (Batch keys are
# computed here, so this assumes one Redis, not a Cluster, like the ledger.)
_FINISH = """
redis.call('hset', KEYS[1], unpack(ARGV, 7))
redis.call('expire', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[6])
local got = redis.call('hmget', KEYS[1], 'store', 'batch', 'callback_url')
if got[2] then
  local prefix = ARGV[4] .. got[2] .. ':'
  redis.call('sadd', prefix .. ARGV[2], ARGV[6])
  redis.call('srem', prefix .. ARGV[3], ARGV[6])
  redis.call('expire', prefix .. ARGV[2], ARGV[5])
end
return {got[1] or false, got[3] or false}
"""


# A job whose message is gone, as `lost`, in one round trip, only if nothing moved since it was
# checked (same status, same recorded message copy, same last write); counted failed in its batch.
# KEYS: job hash, open index. ARGV: ttl, batch key prefix, batch ttl, job id, recorded Redis id,
# recorded updated_at, then field/value pairs. Returns (store, callback_url, pipeline) or false.
_LOSE = """
local got = redis.call('hmget', KEYS[1], 'status', 'redis_id', 'updated_at', 'store', 'batch',
  'callback_url', 'pipeline')
if not got[1] or (got[1] ~= 'queued' and got[1] ~= 'running' and got[1] ~= 'retrying') then
  redis.call('zrem', KEYS[2], ARGV[4])
  return false
end
if (got[2] or '') ~= ARGV[5] or (got[3] or '') ~= ARGV[6] then return false end
redis.call('hset', KEYS[1], unpack(ARGV, 7))
redis.call('expire', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[4])
if got[5] then
  local prefix = ARGV[2] .. got[5] .. ':'
  redis.call('sadd', prefix .. 'failed', ARGV[4])
  redis.call('srem', prefix .. 'done', ARGV[4])
  redis.call('expire', prefix .. 'failed', ARGV[3])
end
return {got[4] or false, got[6] or false, got[7] or false}
"""

# Where the job's message is now (a new copy at every retry and delay hop); only for a job that has
# a status (other messages are nobody's job). KEYS: job hash. ARGV: queue, Redis id.
_LOCATE = """
if redis.call('exists', KEYS[1]) == 0 then return 0 end
redis.call('hset', KEYS[1], 'redis_queue', ARGV[1], 'redis_id', ARGV[2])
return 1
"""


class JobStatus:
    """Read and write job status hashes."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._start = client.register_script(_START)
        self._finish = client.register_script(_FINISH)
        self._lose = client.register_script(_LOSE)
        self._locate = client.register_script(_LOCATE)

    def update(self, job_id: str, **fields: Any) -> None:
        now = fields["updated_at"] = time.time()
        state = fields.get("status")
        try:
            pipe = self.r.pipeline(transaction=False)
            pipe.hset(_key(job_id), mapping=_encode(fields))  # type: ignore[arg-type]
            pipe.expire(_key(job_id), TTL_S)
            if state in OPEN_STATES:
                pipe.zadd(OPEN, {job_id: now})
            elif state is not None:
                pipe.zrem(OPEN, job_id)
            pipe.execute()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record job status in Redis: {exc}") from None

    def queued(self, job_id: str, *, pipeline: str, store: str, queue: str, **extra: Any) -> None:
        self.update(
            job_id,
            status="queued",
            progress="queued",
            pipeline=pipeline,
            store=store,
            queue=queue,
            created_at=time.time(),
            attempts=0,
            **extra,
        )

    def started(self, job_id: str, **fields: Any) -> None:
        """Count an attempt and record `fields` (status running, ...) in one round trip."""
        now = fields["updated_at"] = time.time()
        flat = [x for kv in _encode(fields).items() for x in kv]
        try:
            self._start(keys=[_key(job_id), OPEN], args=[TTL_S, job_id, now, *flat], client=self.r)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record job status in Redis: {exc}") from None

    def finished(
        self, job_id: str, outcome: str, *, batch_prefix: str, batch_ttl_s: int, **fields: Any
    ) -> tuple[str | None, str | None]:
        """Record a job's final `fields`, count it in its batch; return (store, callback_url)."""
        fields["updated_at"] = time.time()
        flat = [x for kv in _encode(fields).items() for x in kv]
        other = "failed" if outcome == "done" else "done"
        try:
            args: list[str | int] = [TTL_S, outcome, other, batch_prefix, batch_ttl_s, job_id, *flat]
            store, callback = self._finish(keys=[_key(job_id), OPEN], args=args, client=self.r)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record job status in Redis: {exc}") from None
        return (_text(store) if store else None, _text(callback) if callback else None)

    def lost(
        self,
        job_id: str,
        *,
        seen_redis_id: str,
        seen_updated_at: str,
        reason: str,
        batch_prefix: str,
        batch_ttl_s: int,
    ) -> tuple[str | None, str | None, str | None] | None:
        """Mark `job_id` lost unless it moved since it was seen; returns (store, callback_url, pipeline)."""
        now = time.time()
        fields = {
            "status": "lost",
            "progress": f"lost: {reason}",
            "error": f"JobLost: {reason}",
            "finished_at": now,
            "updated_at": now,
        }
        flat = [x for kv in _encode(fields).items() for x in kv]
        seen = [seen_redis_id, seen_updated_at]
        args: list[str | int] = [TTL_S, batch_prefix, batch_ttl_s, job_id, *seen, *flat]
        try:
            got = self._lose(keys=[_key(job_id), OPEN], args=args, client=self.r)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record job status in Redis: {exc}") from None
        if not got:
            return None
        store, callback, pipeline = (_text(v) if v else None for v in got)
        return store, callback, pipeline

    def locate(self, job_id: str, queue: str, redis_id: str) -> None:
        """Record which copy of the job's message is current (only for a job that has a status)."""
        try:
            self._locate(keys=[_key(job_id)], args=[queue, redis_id], client=self.r)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record job status in Redis: {exc}") from None

    def open_jobs(self, older_than: float, limit: int) -> list[str]:
        """Jobs not ended whose last write (or check) is older than `older_than` (epoch s), oldest first."""
        try:
            found = self.r.zrangebyscore(OPEN, "-inf", older_than, start=0, num=limit)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read open jobs from Redis: {exc}") from None
        return [_text(j) for j in found]  # type: ignore[arg-type]

    def checked(self, job_ids: list[str]) -> None:
        """Move checked jobs to the back of the open index (a long backlog is checked in turn)."""
        if job_ids:
            now = time.time()
            self.r.zadd(OPEN, dict.fromkeys(job_ids, now), xx=True)

    def forget_open(self, job_ids: list[str]) -> None:
        """Drop jobs from the open index (ended, expired, or never a broker message)."""
        if job_ids:
            self.r.zrem(OPEN, *job_ids)

    def incr_attempts(self, job_id: str) -> int:
        try:
            return int(self.r.hincrby(_key(job_id), "attempts", 1))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record job status in Redis: {exc}") from None

    def get(self, job_id: str) -> dict[str, Any] | None:
        try:
            raw = self.r.hgetall(_key(job_id))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read job status from Redis: {exc}") from None
        if not raw:
            return None
        out: dict[str, Any] = {"id": job_id}
        for k, v in raw.items():
            key, text = _text(k), _text(v)
            if key in _JSON_FIELDS:
                out[key] = json.loads(text)
            elif key in ("attempts",):
                out[key] = int(text)
            elif key in ("created_at", "updated_at", "started_at", "finished_at"):
                out[key] = float(text)
            elif key == "pipeline":
                out[key] = canonical(text)  # a status written before the names were one
            else:
                out[key] = text
        return out
