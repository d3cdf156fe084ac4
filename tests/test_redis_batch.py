"""Lua scripts sent for coroutines off the event loop, many per round trip, each caller its own reply."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from tests.helpers import arun
from wandstore_agents.redis_batch import RedisBatcher

INCR = "return redis.call('incrby', KEYS[1], ARGV[1])"
FAIL_ON_NEGATIVE = "if tonumber(ARGV[1]) < 0 then return redis.error_reply('negative') end return ARGV[1]"


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def test_concurrent_callers_each_get_their_own_reply_or_error(redis_client: Any) -> None:
    # Given one batcher and two scripts
    batch = RedisBatcher(redis_client)
    incr, check = redis_client.register_script(INCR), redis_client.register_script(FAIL_ON_NEGATIVE)

    async def many() -> list[Any]:
        calls = [batch.script(incr, ["counter"], [1]) for _ in range(300)]
        calls += [batch.script(check, [], [n]) for n in (5, -1, 7)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    # When 303 calls are made at once, one of which fails
    replies = arun(many())
    # Then every increment happened once, with its own reply, and only the bad call failed
    assert sorted(replies[:300]) == list(range(1, 301))
    assert replies[300] == b"5" and replies[302] == b"7"
    assert isinstance(replies[301], redis.ResponseError) and "negative" in str(replies[301])
    assert int(redis_client.get("counter")) == 300


def test_scripts_are_loaded_again_after_redis_forgets_them(redis_client: Any) -> None:
    # Given a script Redis has run, then forgot (a restart, SCRIPT FLUSH)
    batch = RedisBatcher(redis_client)
    incr = redis_client.register_script(INCR)
    assert arun(batch.script(incr, ["n"], [2])) == 2
    redis_client.script_flush()
    # When it is called again, Then it is loaded and runs
    assert arun(batch.script(incr, ["n"], [3])) == 5
