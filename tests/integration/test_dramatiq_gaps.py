"""The gaps pipelines/dramatiq_gaps.py fills in Dramatiq's Redis consumer, on a real Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.broker import Consumer
from dramatiq.errors import ConnectionClosed

from pipelines.broker import WandstoreBroker
from pipelines.dead_letters import DeadLetters, MessageEncoder
from pipelines.dramatiq_gaps import GuardedConsumer


@pytest.fixture
def broker(redis_client: Any) -> Iterator[WandstoreBroker]:
    """A broker of its own namespace, with this project's strict message encoder (restored after)."""
    previous = dramatiq.get_encoder()
    dramatiq.set_encoder(MessageEncoder())
    broker = WandstoreBroker(client=redis_client, namespace=f"gaps-{uuid.uuid4().hex[:8]}")
    broker.declare_queue("q")
    yield broker
    dramatiq.set_encoder(previous)


def _message(**options: Any) -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name="q", actor_name="a", args=(1,), kwargs={}, options=options)


def _drain(consumer: Consumer, want: int) -> list[Any]:
    got: list[Any] = []
    for _ in range(50):
        message = next(consumer)
        if message is not None:
            got.append(message)
        if len(got) == want:
            break
    return got


def test_undecodable_messages_are_dead_lettered_and_the_rest_of_the_batch_runs(
    broker: WandstoreBroker, redis_client: Any
) -> None:
    # Given bad bodies (not JSON; a message whose options are a string) between good messages
    good = [broker.enqueue(_message()) for _ in range(2)]
    bad_options = json.dumps({**good[0].asdict(), "options": "eta=now", "message_id": "x"}).encode()
    broker.do_enqueue("q", "bad-1", b"\xff\xfe not json")
    broker.do_enqueue("q", "bad-2", bad_options)
    good.append(broker.enqueue(_message()))
    # When one consumer fetches them all in one batch
    consumer = broker.consume("q", prefetch=10)
    got = _drain(consumer, want=3)
    for message in got:
        consumer.ack(message)
    # Then every good message was delivered, and each bad one is a dead letter with its reason
    assert sorted(m.message_id for m in got) == sorted(m.message_id for m in good)
    letters = {d.redis_id: d for d in DeadLetters(redis_client, broker.namespace).list("q")}
    assert set(letters) == {"bad-1", "bad-2"}
    assert "not JSON" in letters["bad-1"].reason
    assert "'options' is missing or not a dict" in letters["bad-2"].reason
    # And nothing is left claimed by this worker
    assert redis_client.scard(f"{broker.namespace}:__acks__.{broker.broker_id}.q") == 0


def test_delayed_messages_a_lost_consumer_held_go_back_on_their_queue(
    broker: WandstoreBroker, redis_client: Any
) -> None:
    # Given a delayed message fetched (claimed) by the delay queue's consumer
    sent = broker.enqueue(_message(), delay=60_000)
    first = broker.consume("q.DQ", prefetch=10)
    (held,) = _drain(first, want=1)
    assert held.message_id == sent.message_id
    # When that consumer is lost with what it held in memory, as after a connection error,
    # and the consumer thread builds a new one
    second = broker.consume("q.DQ", prefetch=10)
    # Then the message is back on its delay queue and the new consumer gets it
    (again,) = _drain(second, want=1)
    assert again.message_id == sent.message_id


class _TimingOut(Consumer):
    """A consumer whose Redis stalls: every call times out."""

    def __next__(self) -> Any:
        raise redis.TimeoutError("Timeout reading from socket")

    def ack(self, message: Any) -> None:
        raise redis.TimeoutError("Timeout reading from socket")

    nack = ack

    def requeue(self, messages: Any) -> None:
        raise redis.ConnectionError("Connection closed by server")


def test_redis_timeouts_and_lost_connections_are_connection_losses_to_dramatiq(
    broker: WandstoreBroker,
) -> None:
    # Given a consumer whose Redis times out or drops the connection
    consumer = GuardedConsumer(broker, "q", _TimingOut(), lambda *args: None)
    # Then each call raises Dramatiq's ConnectionClosed, which its consumer thread survives
    for call in (lambda: next(consumer), lambda: consumer.ack(None), lambda: consumer.requeue([])):
        with pytest.raises(ConnectionClosed):
            call()  # type: ignore[no-untyped-call]


def _peer(broker: WandstoreBroker, redis_client: Any, **kwargs: Any) -> WandstoreBroker:
    """Another worker process's broker on the same namespace (its own worker id)."""
    other = WandstoreBroker(client=redis_client, namespace=broker.namespace, **kwargs)
    other.declare_queue("q")
    return other


def _heartbeat_at(broker: WandstoreBroker, redis_client: Any, worker: WandstoreBroker, ms: int) -> None:
    redis_client.zadd(f"{broker.namespace}:__heartbeats__", {worker.broker_id: ms})


def _queued(broker: WandstoreBroker, redis_client: Any) -> int:
    return int(redis_client.llen(f"{broker.namespace}:q"))


def test_maintain_requeues_only_what_dead_workers_held(broker: WandstoreBroker, redis_client: Any) -> None:
    from dramatiq.common import current_millis

    from pipelines.dramatiq_gaps import claimed_by, dead_workers, maintain

    # Given a worker that claimed two messages and went silent 20 s ago, and a live one holding one
    dead, live = _peer(broker, redis_client), _peer(broker, redis_client)
    for _ in range(3):
        broker.enqueue(_message())
    assert len(_drain(dead.consume("q", prefetch=2), want=2)) == 2
    assert len(_drain(live.consume("q", prefetch=1), want=1)) == 1
    _heartbeat_at(broker, redis_client, dead, current_millis() - 20_000)
    survivor = _peer(broker, redis_client, heartbeat_timeout=15_000)
    assert dead_workers(survivor) == [dead.broker_id]
    assert claimed_by(survivor, [dead.broker_id], ["q"]) == 2
    # When a survivor only heartbeats, nothing moves
    maintain(survivor, ["q", "q.DQ"], requeue_dead=False)
    assert _queued(broker, redis_client) == 0
    # When it maintains, the dead worker's two messages are back on the queue, the live one's not
    maintain(survivor, ["q", "q.DQ"])
    assert _queued(broker, redis_client) == 2
    assert claimed_by(survivor, [live.broker_id], ["q"]) == 1
    # and the dead worker is forgotten, the survivor's own heartbeat recorded
    beats = {m.decode() for m in redis_client.zrange(f"{broker.namespace}:__heartbeats__", 0, -1)}
    assert dead.broker_id not in beats and survivor.broker_id in beats


def test_the_maintenance_timer_recovers_a_dead_workers_messages_on_an_idle_fleet(
    broker: WandstoreBroker, redis_client: Any
) -> None:
    import time

    from dramatiq.common import current_millis

    from pipelines.maintenance import BrokerMaintenance

    # Given a dead worker holding a message, and a survivor that sends no broker command at all
    dead = _peer(broker, redis_client)
    broker.enqueue(_message())
    assert len(_drain(dead.consume("q", prefetch=1), want=1)) == 1
    _heartbeat_at(broker, redis_client, dead, current_millis() - 5_000)
    survivor = _peer(broker, redis_client, heartbeat_timeout=1_000)
    timer = BrokerMaintenance(interval_ms=50)
    # When the survivor's worker boots, its maintenance thread runs on its own
    timer.before_worker_boot(survivor, None)
    try:
        deadline = time.monotonic() + 5
        while _queued(broker, redis_client) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        timer.before_worker_shutdown(survivor, None)
    # Then the message is back on its queue, and the survivor heartbeats
    assert _queued(broker, redis_client) == 1
    assert redis_client.zscore(f"{broker.namespace}:__heartbeats__", survivor.broker_id) is not None


def test_after_redis_was_away_longer_than_the_timeout_nobody_is_judged_dead_at_once(
    broker: WandstoreBroker, redis_client: Any
) -> None:
    import time

    from dramatiq.common import current_millis

    from pipelines.maintenance import Maintainer

    # Given a worker holding a message whose heartbeat is stale only because Redis was away
    other = _peer(broker, redis_client)
    broker.enqueue(_message())
    assert len(_drain(other.consume("q", prefetch=1), want=1)) == 1
    _heartbeat_at(broker, redis_client, other, current_millis() - 5_000)
    survivor = _peer(broker, redis_client, heartbeat_timeout=1_000)
    maintainer = Maintainer(survivor, lost_after_s=None)
    maintainer._last_ok = time.monotonic() - 10  # this process could not reach Redis for 10 s either
    # When the survivor's first pass after the outage runs
    maintainer.tick()
    # Then it only heartbeats: the other worker keeps its message for one timeout to speak up
    assert _queued(broker, redis_client) == 0
    assert redis_client.zscore(f"{broker.namespace}:__heartbeats__", survivor.broker_id) is not None


def test_a_worker_busy_past_the_heartbeat_timeout_is_never_taken_for_dead(
    broker: WandstoreBroker, redis_client: Any
) -> None:
    import threading
    import time

    from dramatiq import Worker

    from pipelines.dramatiq_gaps import maintain
    from pipelines.maintenance import BrokerMaintenance

    # Given a worker (1 s heartbeat timeout, a beat every 200 ms) whose one thread is in a call
    # three times longer than the timeout, and a survivor maintaining the queue all along
    busy = WandstoreBroker(
        client=redis_client,
        namespace=broker.namespace,
        heartbeat_timeout=1_000,
        middleware=[BrokerMaintenance(interval_ms=200)],
    )
    runs: list[float] = []
    release = threading.Event()

    def long_call() -> None:
        runs.append(time.monotonic())
        release.wait(3)  # the model call

    dramatiq.actor(long_call, broker=busy, queue_name="q")
    survivor = _peer(broker, redis_client, heartbeat_timeout=1_000)
    worker = Worker(busy, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        busy.enqueue(dramatiq.Message(queue_name="q", actor_name="long_call", args=(), kwargs={}, options={}))
        deadline = time.monotonic() + 5
        while not runs and time.monotonic() < deadline:
            time.sleep(0.01)
        # When the survivor maintains the queue for three timeouts while the call runs
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            maintain(survivor, ["q", "q.DQ"])
            assert _queued(broker, redis_client) == 0, "the busy worker's message was requeued"
            time.sleep(0.1)
    finally:
        release.set()
        worker.stop()
    # Then its message ran once, and nobody took it back
    assert len(runs) == 1
