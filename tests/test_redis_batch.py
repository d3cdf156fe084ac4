"""Redis calls from coroutines (group commit, off the event loop) and threads (pooled lean connections)."""

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


def test_threads_call_scripts_on_lean_pooled_connections(redis_client: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    # Given a batcher over a plain-TCP client (hiredis-parsed connections)
    batch = RedisBatcher(redis_client)
    assert batch._pool is not None
    incr = redis_client.register_script(INCR)
    opened = redis_client.info("stats")["total_connections_received"]
    # When 32 threads call the script 50 times each
    with ThreadPoolExecutor(32) as pool:
        replies = list(pool.map(lambda _: batch.script_sync(incr, ["t"], [1]), range(1600)))
    # Then each call ran once with its own reply, on connections reused from call to call
    assert sorted(replies) == list(range(1, 1601))
    assert redis_client.info("stats")["total_connections_received"] - opened <= 32


def test_a_thread_call_reloads_a_forgotten_script_and_raises_script_errors(redis_client: Any) -> None:
    batch = RedisBatcher(redis_client)
    incr, check = redis_client.register_script(INCR), redis_client.register_script(FAIL_ON_NEGATIVE)
    assert batch.script_sync(incr, ["k"], [2]) == 2
    # Given Redis forgot its scripts
    redis_client.script_flush()
    # Then the next call loads the script again and runs it
    assert batch.script_sync(incr, ["k"], [3]) == 5
    # And a script's own error reaches the caller as redis-py's error type
    with pytest.raises(redis.ResponseError, match="negative"):
        batch.script_sync(check, [], [-1])


def test_lean_connections_come_back_after_the_server_drops_them(redis_client: Any) -> None:
    # Given a batcher whose connections have been used (and pooled)
    batch = RedisBatcher(redis_client)
    incr = redis_client.register_script(INCR)
    batch.script_sync(incr, ["r"], [1])
    arun(batch.script(incr, ["r"], [1]))
    # When the server closes every other client connection (as a restart would)
    redis_client.client_kill_filter(_type="normal", skipme=True)
    # Then the next calls reconnect instead of failing
    assert batch.script_sync(incr, ["r"], [1]) == 3
    assert arun(batch.script(incr, ["r"], [1])) == 4
    assert arun(batch.command("GET", "r")) == b"4"


def test_commands_are_packed_as_resp_and_bad_arguments_are_named() -> None:
    from wandstore_agents.resp import pack

    assert pack([("SET", "k", 1.5), ("GET", b"k")]) == (
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n1.5\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    )
    with pytest.raises(redis.DataError, match="bool"):
        pack([("SET", "k", True)])
    with pytest.raises(redis.DataError, match="dict"):
        pack([("SET", "k", {})])
