"""Coroutines' Redis calls: redis-py's asyncio client per event loop, an iteration's calls in one pipeline."""

from __future__ import annotations

import asyncio
from typing import Any

import redis

from adapters.redis_conn import AsyncRedis

INCR = "return redis.call('incrby', KEYS[1], ARGV[1])"
FAIL_ON_NEGATIVE = "if tonumber(ARGV[1]) < 0 then return redis.error_reply('negative') end return ARGV[1]"


def test_concurrent_callers_each_get_their_own_reply_or_error(redis_client: Any, redis_server: Any) -> None:
    # Given one event loop's client and two scripts
    aio = AsyncRedis(redis_server.url)
    incr, check = aio.register_script(INCR), aio.register_script(FAIL_ON_NEGATIVE)

    async def many() -> list[Any]:
        calls = [incr(["counter"], [1]) for _ in range(300)]
        calls += [check([], [n]) for n in (5, -1, 7)]
        calls.append(aio.execute("GET", "counter"))
        return list(await asyncio.gather(*calls, return_exceptions=True))

    # When 304 calls are made at once, one of which fails
    replies = asyncio.run(many())
    # Then every increment happened once, with its own reply, and only the bad call failed
    assert sorted(replies[:300]) == list(range(1, 301))
    assert replies[300] == b"5" and replies[302] == b"7"
    assert isinstance(replies[301], redis.ResponseError) and "negative" in str(replies[301])
    assert int(redis_client.get("counter")) == 300


def test_a_burst_goes_out_as_one_pipeline_on_one_connection(redis_client: Any, redis_server: Any) -> None:
    aio = AsyncRedis(redis_server.url)
    incr = aio.register_script(INCR)
    before = redis_client.info("stats")["total_connections_received"]

    async def burst() -> list[Any]:
        return list(await asyncio.gather(*(incr(["burst"], [1]) for _ in range(256))))

    # When 256 coroutines of one loop call at once
    assert sorted(asyncio.run(burst())) == list(range(1, 257))
    # Then one connection carried them all
    assert redis_client.info("stats")["total_connections_received"] - before == 1


def test_scripts_are_loaded_again_after_redis_forgets_them(redis_client: Any, redis_server: Any) -> None:
    aio = AsyncRedis(redis_server.url)
    incr = aio.register_script(INCR)

    async def twice() -> tuple[Any, Any]:
        first = await incr(["n"], [2])
        # Given Redis forgot its scripts (a restart, SCRIPT FLUSH)
        redis_client.script_flush()
        # When the script is called again, Then it is loaded and runs
        return first, await incr(["n"], [3])

    assert asyncio.run(twice()) == (2, 5)


def test_each_event_loop_gets_its_own_client(redis_server: Any) -> None:
    # Asyncio connections belong to the loop that opened them: two loops, two clients
    aio = AsyncRedis(redis_server.url)

    async def client() -> Any:
        assert await aio.execute("PING") is True
        return aio.client()

    assert asyncio.run(client()) is not asyncio.run(client())


def test_a_lost_round_trip_fails_every_call_in_it() -> None:
    # Given a "Redis" that refuses connections
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
    aio = AsyncRedis(url)

    async def calls() -> list[Any]:
        return list(
            await asyncio.gather(aio.execute("GET", "a"), aio.execute("GET", "b"), return_exceptions=True)
        )

    # Then each caller gets redis-py's ConnectionError
    assert all(isinstance(r, redis.ConnectionError) for r in asyncio.run(calls()))
