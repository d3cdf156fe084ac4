"""The Redis consumer every worker uses: Dramatiq's, minus two ways it strands messages.

1. Dramatiq decodes a fetched message in its consumer thread: a body that does not decode
   raises there, the thread restarts its consumer, and the bad message (with the rest of
   its prefetched batch) stays claimed by this worker until the worker dies, then poisons
   the next one. Here a message that does not decode, or decodes into the wrong types, goes
   to the dead-letter queue at once, with the reason (`pipelines.dead_letters`).
2. After a lost Redis connection Dramatiq's consumer thread drops the delayed messages it
   held in memory (retries waiting for their time) while Redis still lists them as claimed
   by this live worker: nobody would run them until the worker restarts. Worse, a raw
   `redis.ConnectionError` while it hands a delayed message on and then puts the others
   back escapes its error handling and ends the thread: the worker silently stops running
   retries. Here `requeue` raises Dramatiq's `ConnectionClosed`, which the thread survives,
   and a new consumer of a delay queue puts back whatever this worker claims there and its
   thread no longer holds in memory.

And an idle consumer of a fast queue sleeps until Redis announces a push on its queue,
instead of polling (`pipelines/fastlane.py`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.common import compute_backoff
from dramatiq.errors import ConnectionClosed

from adapters.errors import InvalidInput
from adapters.logs import get_logger
from pipelines.dead_letters import decode, record_undecodable

log = get_logger("pipelines.consumer")


class WandstoreConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer with poison messages dead-lettered and delayed messages recovered."""

    def __init__(self, broker: object, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        if queue_name.endswith(".DQ"):
            self._recover_delayed()
        # A fast queue's idle consumer waits for a push instead of polling (pipelines/fastlane.py).
        waiter = getattr(broker, "waiter", None)
        try:
            self._waiter = waiter(queue_name) if waiter is not None else None
        except redis.ConnectionError as e:
            raise ConnectionClosed(e) from None

    def close(self) -> None:
        if self._waiter is not None:
            self._waiter.close()
        super().close()

    @property
    def _acks(self) -> str:
        return f"{self.broker.namespace}:__acks__.{self.broker.broker_id}.{self.queue_name}"

    def _recover_delayed(self) -> None:
        # The consumer thread builds a consumer at start (nothing claimed yet) and again after an
        # error; what this worker claims on the delay queue but its thread no longer holds in
        # memory (dropped with the delay queue, or lost mid-hand-off) would never run.
        held = _held_by_current_thread()
        try:
            claimed = {_text(i) for i in self.broker.client.smembers(self._acks)}
            orphans = sorted(claimed - held)
            if orphans:
                self.broker.do_requeue(self.queue_name, *orphans)
                log.warning("delayed_messages_recovered", queue=self.queue_name, count=len(orphans))
        except redis.ConnectionError as e:
            raise ConnectionClosed(e) from None

    def ack(self, message: MessageProxy) -> None:
        try:
            # The current queue may differ from message.queue_name (a delayed message): ack here.
            self.broker.dispatch_lean("ack", self.queue_name, message.options["redis_message_id"])
        except redis.ConnectionError as e:
            raise ConnectionClosed(e) from None
        finally:
            self.queued_message_ids.discard(message.message_id)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        try:
            super().requeue(messages)
        except redis.ConnectionError as e:
            raise ConnectionClosed(e) from None

    def __next__(self) -> MessageProxy | None:
        try:
            while True:
                if self.message_cache:
                    data = self.message_cache.pop(0)
                    if data is None:
                        continue
                    self.misses = 0
                    try:
                        message = decode(data)
                    except InvalidInput as exc:
                        self._dead_letter(data, str(exc))
                        continue
                    self.queued_message_ids.add(message.message_id)
                    return MessageProxy(message)
                messages: list[bytes | None] = []
                if self.outstanding_message_count < self.prefetch:
                    self.message_cache = messages = self.broker.do_fetch(
                        self.queue_name, self.prefetch - self.outstanding_message_count
                    )
                if not messages:
                    if self._waiter is not None:
                        if self.outstanding_message_count < self.prefetch:
                            self._waiter.wait()
                            return None
                        self._waiter.drain()  # full: poll, but keep the subscription read
                    self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
                    time.sleep(backoff_ms / 1000)
                    return None
        except redis.ConnectionError as e:
            raise ConnectionClosed(e) from None

    def _dead_letter(self, data: bytes, problem: str) -> None:
        """Find the bad body among this consumer's claims and move it to the dead-letter queue."""
        client = self.broker.client
        ids = sorted(client.smembers(self._acks))
        bodies = client.hmget(f"{self.broker.namespace}:{self.queue_name}.msgs", ids) if ids else []
        for rid, body in zip(ids, bodies, strict=True):
            if body == data:
                redis_id = rid.decode() if isinstance(rid, bytes) else str(rid)
                self.broker.do_nack(self.queue_name, redis_id)
                record_undecodable(client, self.queue_name, redis_id, f"undecodable message: {problem}")
                log.error("message_dead_lettered", queue=self.queue_name, redis_id=redis_id, reason=problem)
                return
        log.error("message_undecodable_unclaimed", queue=self.queue_name, reason=problem)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _held_by_current_thread() -> set[str]:
    """Redis ids of the delayed messages Dramatiq's consumer thread (the caller) holds in memory."""
    queue = getattr(threading.current_thread(), "delay_queue", None)
    items = list(getattr(queue, "queue", ()) or ())
    return {str(item.message.options.get("redis_message_id")) for item in items}
