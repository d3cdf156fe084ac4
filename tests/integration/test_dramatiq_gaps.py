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
