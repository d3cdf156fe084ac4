"""Finished steps of a theme build, kept in Redis so a redelivered build resumes where it stopped."""

from __future__ import annotations

import json
from typing import Any

import redis

from adapters.errors import BrokerUnavailable

PREFIX = "wandstore:theme-build:"
TTL_S = 7 * 24 * 3600  # as long as job status is kept


class StepStore:
    """One hash per build: step name -> the step's JSON output (and what it cost)."""

    def __init__(self, client: redis.Redis, build_id: str) -> None:
        self.r = client
        self.key = PREFIX + build_id

    def get(self, step: str) -> dict[str, Any] | None:
        try:
            raw = self.r.hget(self.key, step)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read theme build step {step!r} from Redis: {exc}") from None
        return json.loads(raw) if raw else None

    def put(self, step: str, value: dict[str, Any]) -> None:
        try:
            pipe = self.r.pipeline(transaction=True)
            pipe.hset(self.key, step, json.dumps(value, ensure_ascii=False, separators=(",", ":")))
            pipe.expire(self.key, TTL_S)
            pipe.execute()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record theme build step {step!r} in Redis: {exc}") from None

    def names(self) -> list[str]:
        """The finished steps, for status and tests."""
        try:
            return sorted(k.decode() if isinstance(k, bytes) else str(k) for k in self.r.hkeys(self.key))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read theme build steps from Redis: {exc}") from None
