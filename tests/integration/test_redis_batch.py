"""Redis calls from coroutines (group commit, off the event loop) and threads (pooled lean connections)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from adapters.redis_batch import RedisBatcher
from tests.helpers import arun

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
    from adapters.resp import pack

    assert pack([("SET", "k", 1.5), ("GET", b"k")]) == (
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n1.5\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    )
    with pytest.raises(redis.DataError, match="bool"):
        pack([("SET", "k", True)])
    with pytest.raises(redis.DataError, match="dict"):
        pack([("SET", "k", {})])


def test_coroutines_share_one_connection_per_event_loop_with_no_thread(redis_client: Any) -> None:
    # Given a fresh batcher over a plain-TCP client
    batch = RedisBatcher(redis_client)
    incr = redis_client.register_script(INCR)

    async def many() -> list[Any]:
        return list(await asyncio.gather(*(batch.script(incr, ["loop"], [1]) for _ in range(500))))

    def client_port() -> int:
        (conn,) = batch._loop_conns.values()
        assert conn._transport is not None
        return int(conn._transport.get_extra_info("sockname")[1])

    # When 500 coroutines of one loop call at once, twice
    first = arun(many())
    port = client_port()
    second = arun(many())
    # Then each ran once with its own reply, all on one connection, and no batch thread started
    assert sorted(first + second) == list(range(1, 1001))
    assert client_port() == port
    server_side = [c for c in redis_client.client_list() if c["addr"].endswith(f":{port}")]
    assert len(server_side) == 1 and server_side[0]["cmd"] == "evalsha"
    assert batch._thread is None


def test_a_cancelled_call_does_not_shift_the_replies_of_the_others(redis_client: Any) -> None:
    batch = RedisBatcher(redis_client)
    redis_client.set("a", "1")
    redis_client.set("b", "2")

    async def scenario() -> tuple[Any, Any]:
        doomed = asyncio.ensure_future(batch.command("GET", "a"))
        kept = asyncio.ensure_future(batch.command("GET", "b"))
        await asyncio.sleep(0)  # both written
        doomed.cancel()
        return await kept, await batch.command("GET", "a")

    assert arun(scenario()) == (b"2", b"1")


def test_a_server_that_never_answers_times_out_with_a_named_error() -> None:
    import socket
    import time

    # Given a "Redis" that accepts connections and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        client = redis.Redis(host="127.0.0.1", port=silent.getsockname()[1], socket_timeout=0.3)
        batch = RedisBatcher(client)
        started = time.monotonic()
        # When a coroutine calls it, Then it gets redis-py's TimeoutError after the socket timeout
        with pytest.raises(redis.TimeoutError, match="did not answer"):
            asyncio.run(batch.command("PING"))
        assert 0.25 < time.monotonic() - started < 3


def test_clients_the_lean_path_cannot_speak_go_through_the_batch_thread(redis_client: Any) -> None:
    class Custom(redis.connection.Connection):
        """Any connection class but the plain one (TLS, unix sockets, wrappers) keeps redis-py."""

    kwargs = redis_client.connection_pool.connection_kwargs
    client = redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=Custom, host=kwargs["host"], port=kwargs["port"]
        )
    )
    batch = RedisBatcher(client)
    incr = client.register_script(INCR)
    assert arun(batch.script(incr, ["fallback"], [2])) == 2
    assert arun(batch.command("GET", "fallback")) == b"2"
    assert batch._thread is not None and batch._thread.is_alive()
    # And a script Redis forgot is loaded again there too
    client.script_flush()
    assert arun(batch.script(incr, ["fallback"], [3])) == 5


class _HangUpAfterOneCommand:
    """A TCP peer that reads each connection's first command, then closes it unanswered (a
    server lost mid-call), counting the commands it was sent."""

    def __init__(self) -> None:
        import socket
        import threading

        self.commands = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while data.count(b"\r\n") < 5:  # *2 $4 INCR $1 k
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.commands += data.count(b"*2\r\n")

    def close(self) -> None:
        self._server.close()


def test_a_command_lost_on_the_wire_is_not_sent_again() -> None:
    from adapters import resp

    peer = _HangUpAfterOneCommand()
    endpoint = resp.Endpoint("127.0.0.1", peer.port, db=0, username=None, password=None, timeout=2.0)
    try:
        # When the connection drops after a command was written, before its reply
        with pytest.raises(redis.ConnectionError):
            resp.RespPool(endpoint).execute([("INCR", "k")])
        with pytest.raises(redis.ConnectionError):
            arun(resp.AsyncResp(endpoint).execute(("INCR", "k")))
        # Then each caller got the error, and neither sent the command a second time
        # (Redis may have run it: an enqueue or a budget hold must not run twice)
        assert peer.commands == 2
    finally:
        peer.close()


def test_a_stale_pooled_connection_is_replaced_before_anything_is_sent(redis_client: Any) -> None:
    from adapters import resp

    pool = resp.RespPool(resp.Endpoint.of(redis_client))
    assert pool.execute([("INCR", "stale")]) == [1]
    # Given the server dropped the pooled connection while it was idle
    redis_client.client_kill_filter(_type="normal", skipme=True)
    # Then the next call goes out once, on a new connection
    assert pool.execute([("INCR", "stale")]) == [2]
    assert int(redis_client.get("stale")) == 2
