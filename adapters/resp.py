"""Lean Redis connections: commands written as RESP2, replies parsed by hiredis.

redis-py spends ~100-200 us of Python per command (connection checkout, packing, its RESP
parser); in a worker running 256 jobs that was the largest single cost after the jobs' own
work. Our hot path only ever sends commands and reads as many replies, so it talks RESP2 over
plain sockets and lets hiredis' C parser read the answers (~10 us a command): `RespPipe` (one
socket, for one thread), `RespPool` (pipes shared by threads), `AsyncResp` (one connection
per event loop) and `RespSubscription` (a channel's messages, on a pipe of its own). Used for
plain TCP clients (`supports`); TLS and unix sockets keep redis-py.
Errors come out as redis-py's exception types, so callers' `except redis.RedisError` holds.

A command is sent at most once. A connection that went stale while idle (Redis restarted)
is found before anything is written on it, and replaced; a connection lost once a command
is on the wire fails that call with `redis.ConnectionError`, since Redis may or may not
have run it, and running a script twice (an enqueue, a budget hold) is worse than an error
the caller sees.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis
import redis
from redis.exceptions import NoScriptError, ResponseError


def _arg(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):  # redis-py refuses bools too; be explicit
        raise redis.DataError(f"invalid argument {value!r}: convert bools to int or str")
    if isinstance(value, int | float):
        return repr(value).encode()
    raise redis.DataError(f"invalid argument of type {type(value).__name__}")


def pack(commands: Sequence[Sequence[Any]]) -> bytes:
    """RESP arrays of bulk strings, one per command."""
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for item in command:
            data = _arg(item)
            out.append(b"$%d\r\n" % len(data))
            out.append(data)
            out.append(b"\r\n")
    return b"".join(out)


def _error(reply: hiredis.ReplyError) -> redis.RedisError:
    text = str(reply)
    if text.startswith("NOSCRIPT"):
        return NoScriptError(text)
    return ResponseError(text)


def _convert(reply: Any) -> Any:
    if isinstance(reply, hiredis.ReplyError):
        return _error(reply)
    if isinstance(reply, list):
        return [_convert(item) for item in reply]
    return reply


def supports(client: redis.Redis) -> bool:
    """True when `client` talks plain TCP (what `RespPipe` speaks)."""
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return False
    return pool.connection_class is redis.connection.Connection and "host" in pool.connection_kwargs


@dataclass(frozen=True)
class Endpoint:
    """Where `client` connects and how it logs in: what every lean connection to it needs."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    timeout: float

    @classmethod
    def of(cls, client: redis.Redis) -> Endpoint:
        kwargs = client.connection_pool.connection_kwargs
        return cls(
            host=str(kwargs.get("host", "localhost")),
            port=int(kwargs.get("port", 6379)),
            db=int(kwargs.get("db", 0) or 0),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            timeout=float(kwargs.get("socket_timeout") or kwargs.get("orig_socket_timeout") or 10.0),
        )

    def setup(self) -> list[list[Any]]:
        """The commands a new connection sends first (AUTH, SELECT), if any."""
        commands: list[list[Any]] = []
        if self.password:
            commands.append(["AUTH", *([self.username] if self.username else []), self.password])
        if self.db:
            commands.append(["SELECT", self.db])
        return commands


class RespPipe:
    """One socket to the server, for one thread; reconnects after an error."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._sock: socket.socket | None = None
        self._reader: hiredis.Reader | None = None

    def execute(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Each command's reply (an exception instance for a command that failed)."""
        try:
            return self._round_trip(commands)
        except (OSError, redis.ConnectionError) as exc:
            self.close()
            e = self.endpoint
            raise redis.ConnectionError(f"Redis at {e.host}:{e.port}: {exc}") from None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._reader = None

    def _round_trip(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        sock, reader = self._connected()
        sock.sendall(pack(commands))
        return [_convert(reply) for reply in self._read(sock, reader, len(commands))]

    def _connected(self) -> tuple[socket.socket, hiredis.Reader]:
        if self._sock is not None and not _idle_and_open(self._sock):
            self.close()  # stale: nothing was sent on it, so a new connection is safe
        if self._sock is None or self._reader is None:
            e = self.endpoint
            sock = socket.create_connection((e.host, e.port), timeout=e.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = hiredis.Reader()
            setup = e.setup()
            if setup:
                sock.sendall(pack(setup))
                for reply in self._read(sock, reader, len(setup)):
                    if isinstance(reply, hiredis.ReplyError):
                        sock.close()
                        raise redis.AuthenticationError(str(reply))
            self._sock, self._reader = sock, reader
        return self._sock, self._reader

    @staticmethod
    def _read(sock: socket.socket, reader: hiredis.Reader, count: int) -> list[Any]:
        replies: list[Any] = []
        while len(replies) < count:
            reply = reader.gets()
            if reply is False:
                data = sock.recv(65536)
                if not data:
                    raise redis.ConnectionError("connection closed by the server")
                reader.feed(data)
                continue
            replies.append(reply)
        return replies


def _idle_and_open(sock: socket.socket) -> bool:
    """Whether an idle connection is still usable: nothing to read on it, so no end of stream,
    no error and no stray bytes (one poll with no wait, a few us; a socket `recv` would wait
    out the socket's timeout first)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)


class RespSubscription(RespPipe):
    """A `RespPipe` subscribed to one channel, read for its messages as they arrive."""

    def __init__(self, endpoint: Endpoint, channel: bytes) -> None:
        super().__init__(endpoint)
        self.execute([("SUBSCRIBE", channel)])
        assert self._sock is not None
        self._poller = select.poll()
        self._poller.register(self._sock, select.POLLIN)

    def messages(self, timeout_s: float) -> list[Any]:
        """The payloads of the messages there within `timeout_s`: all that have arrived, as
        soon as any has ([] when none came). Raises `redis.ConnectionError` when it is lost."""
        assert self._sock is not None and self._reader is not None
        payloads: list[Any] = []
        wait_ms = timeout_s * 1000
        while self._poller.poll(wait_ms):
            try:
                data = self._sock.recv(65536)
            except OSError as exc:
                raise redis.ConnectionError(f"subscription lost: {exc}") from None
            if not data:
                raise redis.ConnectionError("subscription lost: closed by the server")
            self._reader.feed(data)
            while (reply := self._reader.gets()) is not False:
                if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                    payloads.append(reply[2])
            wait_ms = 0  # then only what is already there
        return payloads


class RespPool:
    """`RespPipe`s shared by threads: each call takes an idle one (or opens one) and gives it back."""

    def __init__(self, endpoint: Endpoint, max_idle: int = 32) -> None:
        self.endpoint = endpoint
        self.max_idle = max_idle
        self._idle: list[RespPipe] = []
        self._lock = threading.Lock()

    def execute(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        with self._lock:
            pipe = self._idle.pop() if self._idle else None
        if pipe is None:
            pipe = RespPipe(self.endpoint)
        try:
            replies = pipe.execute(commands)
        except BaseException:
            pipe.close()
            raise
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(pipe)
                return replies
        pipe.close()
        return replies


class _NotSent(redis.ConnectionError):
    """The connection was lost before this call was written: sending it again is safe."""


class AsyncResp(asyncio.Protocol):
    """One connection for one event loop, shared by its coroutines with no thread in between.

    Each `execute` is written at once (queued writes of one loop iteration go out in one
    send) and its reply read in order, parsed by hiredis. A lost connection fails every
    call waiting on it with `redis.ConnectionError`; the next call connects again. A server
    that answers nothing for `timeout` seconds is treated as lost.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._transport: asyncio.Transport | None = None
        self._reader = hiredis.Reader()
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._out: list[bytes] = []
        self._connecting: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            reply = self._reader.gets()
            if reply is False:
                return
            if not self._waiting:  # nobody asked: the stream is out of step, start over
                if self._transport is not None:
                    self._transport.abort()
                self._lost(redis.ConnectionError("unexpected reply from Redis"))
                return
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_result(_convert(reply))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None and not self._transport.is_closing():
            return  # an earlier, already replaced connection: the live one is fine
        self._lost(redis.ConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    # --- calls -----------------------------------------------------------------------

    async def execute(self, command: Sequence[Any]) -> Any:
        """One command's reply (an exception instance when Redis refused it); one fresh try
        when the connection was lost before the command was written."""
        try:
            return await self._call(command)
        except _NotSent:
            return await self._call(command)

    async def _call(self, command: Sequence[Any]) -> Any:
        if self._transport is None or self._transport.is_closing():
            await self._connect()
        return await self._send(pack([command]))

    def _send(self, data: bytes) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._out:
            loop.call_soon(self._flush)
        self._out.append(data)
        self._waiting.append((future, loop.time()))
        if self._watchdog is None:
            self._watchdog = loop.call_later(self.endpoint.timeout, self._check)
        return future

    def _flush(self) -> None:
        data, self._out = b"".join(self._out), []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _check(self) -> None:
        self._watchdog = None
        if not self._waiting:
            return
        loop = asyncio.get_running_loop()
        oldest = self._waiting[0][1]
        if loop.time() - oldest >= self.endpoint.timeout:
            if self._transport is not None:
                self._transport.abort()
            self._lost(redis.TimeoutError(f"Redis did not answer for {self.endpoint.timeout:g}s"))
            return
        self._watchdog = loop.call_later(self.endpoint.timeout - (loop.time() - oldest), self._check)

    async def _connect(self) -> None:
        # Its own task, shared by every caller waiting for it: a caller that is cancelled
        # does not cancel the others' connection.
        if self._connecting is None:
            self._connecting = asyncio.create_task(self._open())
            self._connecting.add_done_callback(self._opened)
        await asyncio.shield(self._connecting)

    def _opened(self, task: asyncio.Future[None]) -> None:
        self._connecting = None
        if not task.cancelled():
            task.exception()  # retrieved: the callers got it

    async def _open(self) -> None:
        self._reset()
        e = self.endpoint
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(lambda: self, e.host, e.port), e.timeout)
        except (OSError, TimeoutError) as exc:
            raise redis.ConnectionError(f"Redis at {e.host}:{e.port}: {exc}") from None
        for command in e.setup():
            reply = await self._send(pack([command]))
            if isinstance(reply, Exception):
                if self._transport is not None:
                    self._transport.close()
                raise redis.AuthenticationError(str(reply))

    def _reset(self) -> None:
        self._transport = None
        self._reader = hiredis.Reader()
        self._out = []

    def _lost(self, error: redis.RedisError) -> None:
        waiting, self._waiting = self._waiting, deque()
        # The calls still in `_out` (the newest ones) never reached the socket.
        sent = len(waiting) - len(self._out)
        self._reset()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        unsent = _NotSent(str(error))
        for i, (future, _) in enumerate(waiting):
            if not future.done():
                future.set_exception(error if i < sent else unsent)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
