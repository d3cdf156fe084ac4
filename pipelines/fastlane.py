"""A Redis broker whose latency-sensitive queues wake their idle consumers when a message lands.

Dramatiq's idle Redis consumer backs off up to `worker_timeout` (1 s by default) between
fetches, so a message arriving at a quiet worker waits up to a second. Lowering
`dramatiq_worker_timeout` fixes that but also makes every worker thread wake on that
period: measured with 64 threads and 5 ms, an idle process burned 40% of a core. A short
poll for the consumers of the fast queues only still cost ~7% of a core per idle process at
5 ms, for a pick-up of ~2.5 ms (p50).

Here an idle consumer of a fast queue waits on Redis instead: it subscribes to its queue
list's keyspace events (`__keyspace@{db}__:{ns}:{queue}`) and, when a fetch comes back
empty, sleeps until a push is announced there. Every producer pushes with `RPUSH` (a plain
Dramatiq client's enqueue, this project's, a stopping worker's requeue, a dead-letter
replay), so a message is fetched as soon as it lands, whoever sent it, and an idle worker
costs nothing between messages. Subscribing before the first fetch means no push can slip
between an empty fetch and the wait. The wait is bounded by `wake_ms` all the same.

Keyspace events need the server's `notify-keyspace-events` to include `K` and `l` (or
`A`); a consumer adds them when they are missing. Where `CONFIG` is refused (some managed
Redis) or the client is one the lean connections do not speak (TLS, unix sockets), the
consumer polls every `poll_ms` instead, as does one that cannot take more messages.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis
from dramatiq.brokers.redis import RedisBroker

from adapters import resp
from adapters.logs import get_logger

log = get_logger("pipelines.fastlane")
# The keyspace events of a message landing on a queue list.
PUSH_EVENTS = frozenset({b"rpush", b"lpush", b"linsert"})
_refused_lock = threading.Lock()
_refused: set[str] = set()  # servers that refused CONFIG: warned once per process


class FastLaneBroker(RedisBroker):
    """`RedisBroker` whose fast queues (`poll_ms={queue: ms}`) wake idle consumers on a push.

    `poll_ms` is the idle poll of a fast queue's consumer when it cannot wait for a push;
    `wake_ms` the longest it waits for one.
    """

    def __init__(self, *, poll_ms: dict[str, int] | None = None, wake_ms: int = 100, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.poll_ms = dict(poll_ms or {})
        self.wake_ms = wake_ms

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        poll = self.poll_ms.get(queue_name)
        return super().consume(queue_name, prefetch, min(timeout, poll) if poll else timeout)

    def waiter(self, queue_name: str) -> PushWaiter | None:
        """A consumer's own subscription to `queue_name`'s pushes (None: it polls)."""
        if queue_name not in self.poll_ms or not resp.supports(self.client):
            return None
        endpoint = resp.Endpoint.of(self.client)
        if not keyspace_events_on(self.client, f"{endpoint.host}:{endpoint.port}"):
            return None
        return PushWaiter(endpoint, f"{self.namespace}:{queue_name}", self.wake_ms)


def keyspace_events_on(client: redis.Redis, server: str) -> bool:
    """Make sure the server announces list pushes on keyspace channels (`K` and `l`)."""
    try:
        flags = str(client.config_get("notify-keyspace-events").get("notify-keyspace-events", ""))
        has_lists = "l" in flags or "A" in flags
        if "K" in flags and has_lists:
            return True
        client.config_set("notify-keyspace-events", flags + "K" + ("" if has_lists else "l"))
        return True
    except redis.ResponseError as exc:
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
    """One consumer's subscription to its queue list's keyspace events, on its own socket."""

    def __init__(self, endpoint: resp.Endpoint, queue_key: str, wake_ms: int) -> None:
        self.wait_s = wake_ms / 1000
        channel = f"__keyspace@{endpoint.db}__:{queue_key}".encode()
        self._subscription = resp.RespSubscription(endpoint, channel)

    def wait(self) -> bool:
        """Whether a push was announced within `wake_ms` (pushes since the last call count)."""
        deadline = time.monotonic() + self.wait_s
        while (remaining := deadline - time.monotonic()) > 0:
            if PUSH_EVENTS.intersection(self._subscription.messages(remaining)):
                return True
        return False

    def drain(self) -> bool:
        """Read what has arrived without waiting; whether it announced a push."""
        return bool(PUSH_EVENTS.intersection(self._subscription.messages(0)))

    def close(self) -> None:
        self._subscription.close()
