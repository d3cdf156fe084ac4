"""The interactive lane's idle consumer sleeps until Redis announces a push on its queue.

Dramatiq's idle Redis consumer backs off up to `worker_timeout` (1 s by default) between
fetches, so a message reaching a quiet worker waits up to a second. A short idle poll for
this queue's consumer only (`RedisBroker.consume`'s `timeout`) picks up within a few ms but
keeps every idle process fetching hundreds of times a second.

So the lane's consumer subscribes (redis-py PubSub) to its queue list's keyspace channel
(`__keyspace@{db}__:{ns}:{queue}`) before its first fetch and, when a fetch comes back empty,
waits there for a push, at most `wake_ms`. Every producer pushes with `RPUSH` (any Dramatiq
client's enqueue, a stopping worker's requeue, a dead-letter replay), so a message is fetched
as soon as it lands, whoever sent it. `bench/pickup.py` measures the three ways side by side.

Keyspace events need the server's `notify-keyspace-events` to include `K` and `l`; the
consumer adds them when missing. Where `CONFIG` is refused (some managed Redis), it polls
every `poll_ms` instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import redis
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.errors import ConnectionClosed

from adapters.logs import get_logger

log = get_logger("pipelines.fastlane")
# The keyspace events of a message landing on a queue list.
PUSH_EVENTS = frozenset({b"rpush", b"lpush", b"linsert"})
_refused_lock = threading.Lock()
_refused: set[str] = set()  # servers that refused CONFIG: warned once per process


def keyspace_events_on(client: redis.Redis) -> bool:
    """Make sure the server announces list pushes on keyspace channels (`K` and `l`)."""
    try:
        flags = str(client.config_get("notify-keyspace-events").get("notify-keyspace-events", ""))
        has_lists = "l" in flags or "A" in flags
        if "K" in flags and has_lists:
            return True
        client.config_set("notify-keyspace-events", flags + "K" + ("" if has_lists else "l"))
        return True
    except redis.ResponseError as exc:
        kwargs = client.get_connection_kwargs()
        server = str(kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}")
        with _refused_lock:
            if server not in _refused:
                _refused.add(server)
                log.warning(
                    "fastlane_keyspace_events_refused",
                    server=server,
                    error=str(exc),
                    hint="set notify-keyspace-events to include K and l on the server; polling meanwhile",
                )
        return False


class PushWaiter:
    """One consumer's subscription to its queue list's keyspace channel."""

    def __init__(self, client: redis.Redis, queue_key: str, wake_ms: int) -> None:
        self.wait_s = wake_ms / 1000
        db = int(client.get_connection_kwargs().get("db") or 0)
        self._pubsub = client.pubsub()
        self._pubsub.subscribe(f"__keyspace@{db}__:{queue_key}")
        # Confirmed before the consumer's first fetch: no push can slip between a fetch and a wait.
        deadline = time.monotonic() + 10
        while (got := self._pubsub.get_message(timeout=1.0)) is None or got["type"] != "subscribe":
            if time.monotonic() > deadline:
                self.close()
                raise redis.TimeoutError(f"no subscription to {queue_key!r} within 10 s")

    def wait(self) -> bool:
        """Whether a push was announced within `wake_ms` (pushes since the last call count)."""
        deadline = time.monotonic() + self.wait_s
        while (remaining := deadline - time.monotonic()) > 0:
            if self._read(remaining):
                self.drain()
                return True
        return False

    def drain(self) -> bool:
        """Read what has arrived without waiting; whether it announced a push."""
        pushed = False
        while (got := self._pubsub.get_message(timeout=0)) is not None:
            pushed = pushed or got["data"] in PUSH_EVENTS
        return pushed

    def _read(self, timeout_s: float) -> bool:
        got = self._pubsub.get_message(timeout=timeout_s)
        return got is not None and got["type"] == "message" and got["data"] in PUSH_EVENTS

    def close(self) -> None:
        self._pubsub.close()


class WokenConsumer(Consumer):
    """A consumer that, after an empty fetch, waits for a push instead of sleeping.

    A lost subscription costs one poll period (`poll_ms`), not the consumer: the next wait
    subscribes again (if Redis itself is gone, the next fetch says so).
    """

    def __init__(self, inner: Consumer, waiter: PushWaiter, poll_ms: int) -> None:
        self.inner = inner
        self.waiter = waiter
        self.poll_s = poll_ms / 1000

    def __next__(self) -> MessageProxy | None:
        message = next(self.inner)
        if message is None:
            try:
                self.waiter.wait()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("fastlane_subscription_lost", error=str(exc))
                time.sleep(self.poll_s)
        return message

    def ack(self, message: MessageProxy) -> None:
        self.inner.ack(message)

    def nack(self, message: MessageProxy) -> None:
        self.inner.nack(message)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        self.inner.requeue(messages)

    def close(self) -> None:
        try:
            self.waiter.close()
        finally:
            self.inner.close()


def waiter_for(client: redis.Redis, queue_key: str, wake_ms: int) -> PushWaiter | None:
    """A `PushWaiter` on `queue_key`, or None where the server will not announce pushes."""
    try:
        return PushWaiter(client, queue_key, wake_ms) if keyspace_events_on(client) else None
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ConnectionClosed(exc) from None


__all__ = ["PUSH_EVENTS", "PushWaiter", "WokenConsumer", "keyspace_events_on", "waiter_for"]
