"""Prompt labels in Redis: which version `production`, `staging` or a canary points at.

One hash per agent, `wandstore:prompt-labels:{agent}`, field = label, value = JSON
`{version, weight, previous, updated_at}`; and a capped history list per agent,
`wandstore:prompt-labels:{agent}:history`, newest first. Moves are transactions
(WATCH/MULTI), so two people promoting at once can't lose each other's `previous`.

Every move (and `clear`) also bumps one counter, `wandstore:prompt-labels:epoch`, in the same
transaction. Workers read it on every call (one GET, pipelined with the call's other Redis work)
and re-read their labels when it moved, so a move reaches the next job, not the next cache expiry.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis

from adapters.errors import BrokerUnavailable, InvalidInput
from adapters.redis_conn import AsyncRedis

PREFIX = "wandstore:prompt-labels:"
# Bumped by every label move of any agent; workers compare it with the epoch their labels came with.
EPOCH_KEY = PREFIX + "epoch"
PRODUCTION = "production"
HISTORY_LIMIT = 500
LABEL_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_AGENT_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Pointer:
    """Where a label pointed: a version and its traffic weight in percent (0-100)."""

    version: str
    weight: float


@dataclass(frozen=True)
class LabelState:
    """One label of one agent, as stored."""

    version: str
    weight: float
    previous: Pointer | None
    updated_at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> LabelState:
        data = json.loads(raw)
        prev = data.get("previous")
        return cls(
            version=str(data["version"]),
            weight=float(data.get("weight", 0)),
            previous=Pointer(str(prev["version"]), float(prev["weight"])) if prev else None,
            updated_at=float(data.get("updated_at", 0)),
        )


def check_label(label: str) -> str:
    if not LABEL_RE.fullmatch(label):
        raise InvalidInput(f"label {label!r} is invalid: it must match {LABEL_RE.pattern}")
    return label


def check_weight(label: str, weight: float | None) -> float:
    """Production takes what canaries leave (100); any other label gets 0-100, default 0."""
    if label == PRODUCTION:
        if weight not in (None, 100):
            raise InvalidInput(
                "production takes all traffic the canaries don't; give --weight to a canary label instead"
            )
        return 100.0
    weight = 0.0 if weight is None else float(weight)
    if not 0 <= weight <= 100:
        raise InvalidInput(f"weight {weight} is out of range: give a percentage from 0 to 100")
    return weight


_Move = Callable[[LabelState | None], tuple[LabelState | None, dict[str, Any]]]


def _key(agent: str) -> str:
    if not _AGENT_RE.fullmatch(agent):
        raise InvalidInput(f"agent name {agent!r} is invalid: it must match {_AGENT_RE.pattern}")
    return PREFIX + agent


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class PromptLabels:
    """Read and move an agent's labels; every Redis error becomes `BrokerUnavailable`."""

    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    def get_all(self, agent: str) -> dict[str, LabelState]:
        """Every label of `agent` ({} when Redis has none)."""
        try:
            raw = self.r.hgetall(_key(agent))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read prompt labels from Redis: {exc}") from None
        return {_text(k): LabelState.from_json(v) for k, v in raw.items()}

    def epoch(self) -> int:
        """How many label moves Redis has seen (0 before the first)."""
        try:
            return int(self.r.get(EPOCH_KEY) or 0)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the prompt label epoch from Redis: {exc}") from None

    def get(self, agent: str, label: str) -> LabelState | None:
        return self.get_all(agent).get(label)

    def promote(
        self,
        agent: str,
        label: str,
        version: str,
        weight: float | None = None,
        *,
        fallback: str | None = None,
        note: str = "",
    ) -> LabelState:
        """Point `label` at `version`; the old pointer (or `fallback`, the file default) is `previous`."""
        check_label(label)
        share = check_weight(label, weight)

        def move(current: LabelState | None) -> tuple[LabelState, dict[str, Any]]:
            if current is not None:
                previous: Pointer | None = Pointer(current.version, current.weight)
            else:
                previous = Pointer(fallback, 100.0) if fallback and label == PRODUCTION else None
            state = LabelState(version, share, previous, time.time())
            return state, {"action": "promote", "from_version": previous.version if previous else None}

        return self._move(agent, label, move, note)

    def rollback(self, agent: str, label: str, *, note: str = "") -> LabelState | None:
        """Point `label` back where it was; a label that had no previous pointer is removed."""
        check_label(label)

        def move(current: LabelState | None) -> tuple[LabelState | None, dict[str, Any]]:
            if current is None:
                raise InvalidInput(f"{agent} has no label {label!r} in Redis: nothing to roll back")
            if current.previous is None:
                # A canary that was created from nothing: rolling it back ends it.
                return None, {"action": "rollback", "from_version": current.version}
            # `previous` becomes what we rolled back from, so a second rollback redoes the move.
            back = LabelState(
                current.previous.version,
                current.previous.weight,
                Pointer(current.version, current.weight),
                time.time(),
            )
            return back, {"action": "rollback", "from_version": current.version}

        return self._move(agent, label, move, note)

    def history(self, agent: str, limit: int = 50) -> list[dict[str, Any]]:
        """Label moves of `agent`, newest first."""
        try:
            raw = self.r.lrange(_key(agent) + ":history", 0, max(limit, 1) - 1)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read prompt label history from Redis: {exc}") from None
        return [json.loads(item) for item in raw]

    def clear(self, agent: str) -> None:
        """Forget every label and the history of `agent` (the files' defaults apply again)."""
        try:
            with self.r.pipeline(transaction=True) as pipe:
                pipe.delete(_key(agent), _key(agent) + ":history")
                pipe.incr(EPOCH_KEY)
                pipe.execute()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not clear prompt labels in Redis: {exc}") from None

    def _move(self, agent: str, label: str, move: _Move, note: str) -> Any:
        """Read the label, apply `move(current) -> (state or None, history entry)`, write both atomically."""
        key = _key(agent)
        result: dict[str, Any] = {}

        def txn(pipe: Any) -> None:
            raw = pipe.hget(key, label)
            current = LabelState.from_json(raw) if raw else None
            state, entry = move(current)
            pipe.multi()
            if state is None:
                pipe.hdel(key, label)
            else:
                pipe.hset(key, label, state.to_json())
            entry.update(
                at=time.time(),
                label=label,
                version=state.version if state else None,
                weight=state.weight if state else None,
                note=note,
            )
            pipe.lpush(key + ":history", json.dumps(entry, separators=(",", ":")))
            pipe.ltrim(key + ":history", 0, HISTORY_LIMIT - 1)
            pipe.incr(EPOCH_KEY)  # in the same MULTI: once a move returns, every reader sees it moved
            result["state"] = state

        try:
            self.r.transaction(txn, key)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not move prompt label in Redis: {exc}") from None
        return result["state"]


class LabelEpoch:
    """The label epoch for coroutines: `await epoch()` is one GET, sent with the loop's other calls."""

    def __init__(self, aio: AsyncRedis) -> None:
        self.aio = aio

    async def __call__(self) -> int:
        try:
            return int(await self.aio.execute("GET", EPOCH_KEY) or 0)
        except (redis.RedisError, OSError) as exc:
            raise BrokerUnavailable(f"could not read the prompt label epoch from Redis: {exc}") from None
