"""Job status in Redis: what `status ID`, the API and the demo read."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from adapters.errors import BrokerUnavailable
from adapters.pipeline_names import canonical

PREFIX = "wandstore:job:"
TTL_S = 7 * 24 * 3600
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


# A job's start in one round trip: count the attempt, mark it running.
_START = """
redis.call('hincrby', KEYS[1], 'attempts', 1)
redis.call('hset', KEYS[1], unpack(ARGV, 2))
redis.call('expire', KEYS[1], ARGV[1])
return 1
"""

# A job's end in one round trip: its final fields, its batch's count (a set, so a redelivery
# counts once) and what the worker needs to queue its webhook. ARGV: ttl, outcome, other
# outcome, batch key prefix, batch ttl, job id, then field/value pairs. (Batch keys are
# computed here, so this assumes one Redis, not a Cluster, like the ledger.)
_FINISH = """
redis.call('hset', KEYS[1], unpack(ARGV, 7))
redis.call('expire', KEYS[1], ARGV[1])
local got = redis.call('hmget', KEYS[1], 'store', 'batch', 'callback_url')
if got[2] then
  local prefix = ARGV[4] .. got[2] .. ':'
  redis.call('sadd', prefix .. ARGV[2], ARGV[6])
  redis.call('srem', prefix .. ARGV[3], ARGV[6])
  redis.call('expire', prefix .. ARGV[2], ARGV[5])
end
return {got[1] or false, got[3] or false}
"""


class JobStatus:
    """Read and write job status hashes."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._start = client.register_script(_START)
        self._finish = client.register_script(_FINISH)

    def update(self, job_id: str, **fields: Any) -> None:
        fields["updated_at"] = time.time()
        try:
            pipe = self.r.pipeline(transaction=False)
            pipe.hset(_key(job_id), mapping=_encode(fields))  # type: ignore[arg-type]
            pipe.expire(_key(job_id), TTL_S)
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
        fields["updated_at"] = time.time()
        flat = [x for kv in _encode(fields).items() for x in kv]
        try:
            self._start(keys=[_key(job_id)], args=[TTL_S, *flat], client=self.r)
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
            store, callback = self._finish(keys=[_key(job_id)], args=args, client=self.r)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record job status in Redis: {exc}") from None
        return (_text(store) if store else None, _text(callback) if callback else None)

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
