"""Job status in Redis: what `status ID`, the API and the demo read."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from wandstore_agents.errors import BrokerUnavailable

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


class JobStatus:
    """Read and write job status hashes."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

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
            else:
                out[key] = text
        return out
