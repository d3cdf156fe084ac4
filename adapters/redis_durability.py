"""Refuse a Redis that would silently lose state: tokens, secrets, budgets, labels, queued jobs.

Measured before this check: after a restart of a Redis with neither AOF nor RDB, every store
token answered 401, budgets fell back to the default, today's spend to $0 and queued jobs
vanished. An evicting `maxmemory-policy` loses the same keys under memory pressure instead.
"""

from __future__ import annotations

from typing import Any

import redis

from adapters.errors import BrokerUnavailable, ConfigError

OPT_OUT = "REDIS_REQUIRE_DURABLE=false"


def _config(client: redis.Redis, name: str) -> str | None:
    """A CONFIG value, or None where the server refuses CONFIG (some managed services do)."""
    try:
        value: Any = client.config_get(name).get(name)
    except redis.ResponseError:
        return None
    return None if value is None else str(value.decode() if isinstance(value, bytes) else value)


def durability_problems(client: redis.Redis) -> list[str]:
    """What makes `client`'s server lose data on restart or under memory pressure (empty: none)."""
    try:
        persistence = client.info("persistence")
        memory = client.info("memory")
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"could not read the Redis server's INFO: {exc}") from None
    problems = []
    aof = bool(int(persistence.get("aof_enabled", 0)))
    save = _config(client, "save")
    if not aof and not save:
        known = "" if save is not None else " (CONFIG GET save was refused, so RDB could not be confirmed)"
        problems.append(
            "persistence is off: set `appendonly yes` (AOF, recommended) or an RDB `save` schedule" + known
        )
    policy = str(memory.get("maxmemory_policy", "noeviction"))
    if policy != "noeviction":
        problems.append(f"maxmemory-policy is {policy!r}: set `maxmemory-policy noeviction`")
    return problems


def require_durable(client: redis.Redis, *, required: bool) -> list[str]:
    """Raise ConfigError naming the settings when the server is not durable (unless opted out).

    Returns the problems found, so a caller that opted out can log them.
    """
    problems = durability_problems(client)
    if problems and required:
        raise ConfigError(
            "this Redis would lose tokens, budgets and queued jobs: "
            + "; ".join(problems)
            + f". To run anyway (tests, throwaway demos), set {OPT_OUT}."
        )
    return problems
