"""The interactive lane's idle consumer sleeps until Redis announces a push, whoever pushed."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from pipelines.broker import WandstoreBroker
from pipelines.fastlane import PushWaiter, WokenConsumer

QUEUE = "fastlane_probe"
# Far longer than a wake-up takes: a consumer that got its message well before these had to
# have been woken, it cannot have polled or timed out.
POLL_MS = 3000
WAKE_MS = 6000


def _message(queue: str = QUEUE) -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name=queue, actor_name="probe", args=(), kwargs={}, options={})


@pytest.fixture
def lane_broker(redis_client: Any) -> Iterator[Any]:
    broker = WandstoreBroker(
        url=_url(redis_client),
        poll_ms={QUEUE: POLL_MS},
        wake_ms=WAKE_MS,
        namespace=f"fastlane-{uuid.uuid4().hex[:8]}",
    )
    broker.declare_queue(QUEUE)
    yield broker
    broker.close()


def test_an_idle_consumer_is_woken_by_a_plain_clients_enqueue(lane_broker: Any, redis_client: Any) -> None:
    # Given an idle consumer of a fast queue that would poll only every 3 s and wait up to 6 s
    consumer = lane_broker.consume(QUEUE, prefetch=4)
    assert isinstance(consumer, WokenConsumer)
    fetch, fetches = lane_broker.do_fetch, []
    lane_broker.do_fetch = lambda *a: fetches.append(time.monotonic()) or fetch(*a)
    got: dict[str, Any] = {}

    def consume() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = next(consumer)
            if message is not None:
                got["message"], got["at"] = message, time.monotonic()
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.3)  # it has fetched nothing and is waiting
    idle_from = time.monotonic()
    time.sleep(1.0)
    # When a plain Dramatiq client (not this project's broker) enqueues a message
    plain = RedisBroker(url=_url(redis_client), namespace=lane_broker.namespace)
    sent_at = time.monotonic()
    plain.enqueue(_message())
    thread.join(timeout=10)
    # Then, idle, it did not poll at all (a polling consumer fetches every few ms to seconds)
    assert [t for t in fetches if idle_from <= t < sent_at] == []
    # And it had the message long before any poll or wait could have ended
    assert "message" in got, "the consumer never got the message"
    assert got["at"] - sent_at < 1.0
    assert got["message"].queue_name == QUEUE
    # And the server now announces list pushes on keyspace channels
    flags = redis_client.config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert "K" in flags and ("l" in flags or "A" in flags)
    consumer.close()
    plain.close()


def test_a_server_that_refuses_config_gets_a_polling_consumer(redis_client: Any) -> None:
    # Given a Redis user that may do everything but CONFIG (as some managed Redis offer)
    user = f"nocfg-{uuid.uuid4().hex[:6]}"
    redis_client.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-config")
    kwargs = redis_client.connection_pool.connection_kwargs
    broker = WandstoreBroker(
        url=f"redis://{user}:pw@{kwargs['host']}:{kwargs['port']}/0",
        poll_ms={QUEUE: 20},
        namespace=f"fastlane-{uuid.uuid4().hex[:8]}",
    )
    try:
        broker.declare_queue(QUEUE)
        # When its fast queue's consumer starts
        consumer = broker.consume(QUEUE, prefetch=4)
        # Then it polls (no subscription) and still gets what is enqueued
        assert not isinstance(consumer, WokenConsumer)
        broker.enqueue(_message())
        deadline = time.monotonic() + 5
        got = None
        while got is None and time.monotonic() < deadline:
            got = next(consumer)
        assert got is not None and got.queue_name == QUEUE
        consumer.close()
    finally:
        broker.close()
        redis_client.execute_command("ACL", "DELUSER", user)


def test_a_waiter_counts_pushes_only_and_subscribes_again_after_a_lost_connection(redis_client: Any) -> None:
    import redis

    redis_client.config_set("notify-keyspace-events", "Kl")
    waiter = PushWaiter(redis_client, "probe:list", wake_ms=200)
    # A pop or a delete on the list is not a message landing; a push is, even one made
    # while nobody was waiting
    redis_client.rpush("probe:list", "a")
    redis_client.lpop("probe:list")
    assert waiter.wait() is True
    redis_client.rpush("probe:list", "b")
    redis_client.delete("probe:list")
    assert waiter.drain() is True
    redis_client.rpush("other:list", "c")
    assert waiter.wait() is False  # nothing for this list: the wait ran out
    # When the server drops the subscription, the next wait says so
    redis_client.client_kill_filter(_type="pubsub")
    with pytest.raises(redis.ConnectionError):
        waiter.wait()
    # And the wait after it subscribes again, and hears the next push
    waiter.wait()
    redis_client.rpush("probe:list", "d")
    assert waiter.wait() is True
    waiter.close()


def _url(client: Any) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"
