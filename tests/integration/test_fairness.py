"""Fairness between stores: the batch lane served round-robin, deliveries capped per store.

The lane tests run on the Procfile's own batch worker (`lane`: one process, 32 threads, the
production defaults: `FAIR_WINDOW=128`) against the session's dev gateway made slow.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from pipelines.fair import BULK, URGENT, FairQueue
from pipelines.fair_dispatch import Dispatcher, FairConfig, FairDispatch
from pipelines.lost_jobs import reconcile
from tests.conftest import sample_products
from tests.helpers import send_plain, wait_job

WINDOW = FairConfig().window  # the default the lane's worker runs with
PREFIX = "tests:fair:"  # apart from the keys of the session worker's own dispatcher


def _message(store: str, n: int) -> Message[Any]:
    return Message(queue_name="batch", actor_name="product_copy", args=(store, n), kwargs={}, options={})


def _pairs(messages: list[Message[Any]]) -> list[tuple[str, bytes]]:
    return [(m.message_id, m.encode()) for m in messages]


def _args(moves: list[tuple[str, bytes]]) -> list[tuple[Any, ...]]:
    return [tuple(Message.decode(body).args) for _, body in moves]


# --- the Redis side, on the session Redis -------------------------------------------------


def test_without_a_dispatcher_submissions_go_straight_to_the_queue(redis_client: Any) -> None:
    fair = FairQueue(redis_client, prefix=PREFIX)
    # Given no dispatcher runs, then a submission is refused (the caller enqueues itself)
    assert fair.submit("store-a", BULK, _pairs([_message("store-a", 0)]), assist=8) is None
    assert fair.depth().total == 0


def test_stores_are_served_round_robin_and_single_requests_first(redis_client: Any) -> None:
    fair = FairQueue(redis_client, prefix=PREFIX)
    assert fair.hold("dispatcher-1", 4, 5000)
    assert not fair.hold("dispatcher-2", 4, 5000)  # one active dispatcher
    # Given store A's catalog of 20 (the window of 4 fills at once)
    moved = fair.submit("store-a", BULK, _pairs([_message("store-a", n) for n in range(20)]), assist=8)
    assert moved is not None and _args(moved) == [("store-a", n) for n in range(4)]
    fair.done([i for i, _ in moved])
    # When store B asks for one product and then a catalog, and store A for one product
    assert fair.submit("store-b", BULK, _pairs([_message("store-b", n) for n in (10, 11)]), assist=8) == []
    assert fair.submit("store-b", URGENT, _pairs([_message("store-b", 1)]), assist=8) == []
    assert fair.submit("store-a", URGENT, _pairs([_message("store-a", 99)]), assist=8) == []
    # Then, as A's four start, the moves alternate stores, each store's single requests first
    for message_id, _ in moved:
        fair.started(message_id)
    order = fair.claim(4, 100)
    assert _args(order) == [("store-a", 99), ("store-b", 1), ("store-a", 4), ("store-b", 10)]
    assert fair.depth().pending == {"store-b": 1, "store-a": 15}


def test_a_dispatcher_dying_between_claim_and_enqueue_loses_nothing(redis_client: Any) -> None:
    fair = FairQueue(redis_client, prefix=PREFIX)
    assert fair.hold("dispatcher-1", 10, 5000)
    assert fair.submit("store-a", BULK, _pairs([_message("store-a", n) for n in range(5)]), assist=0) == []
    # Given a dispatcher that claimed three moves and died before enqueueing them
    claimed = fair.claim(0, 3)
    assert _args(claimed) == [("store-a", 0), ("store-a", 1), ("store-a", 2)]
    assert fair.depth().moving == 3
    # When the next holder recovers claims older than the grace (here: any)
    assert fair.recover(grace_ms=0) == 3
    # Then they are back at the front, in their order, and move again
    assert _args(fair.claim(0, 100)) == [("store-a", n) for n in range(5)]


def test_the_dispatcher_keeps_the_window_and_drains_when_switched_off(redis_client: Any) -> None:
    # Given a dispatcher on a broker of its own namespace (no worker consumes it)
    broker = RedisBroker(client=redis_client, namespace=f"fairtest-{uuid.uuid4().hex[:8]}", middleware=[])
    fair = FairQueue(redis_client, prefix=PREFIX)
    on = Dispatcher(fair, broker, FairConfig(window=3))
    assert on.step() == 0 and fair.depth().window == 3  # it announced itself
    fair.submit("store-a", BULK, _pairs([_message("store-a", n) for n in range(10)]), assist=0)
    # When it works, then it moves a window's worth onto the queue, and no more until they start
    assert on.step() == 3 and on.step() == 0
    assert broker.do_qsize("batch") == 3
    # When the lane is switched off, then a dispatcher drains the rest without a window
    redis_client.delete(PREFIX + "on", PREFIX + "lease")
    off = Dispatcher(fair, broker, FairConfig(enabled=False))
    assert off.step() == 7
    assert broker.do_qsize("batch") == 10
    # and announces nothing: producers enqueue directly again
    assert fair.depth().window is None and off.step() == 0
    assert fair.submit("store-a", BULK, _pairs([_message("store-a", 99)]), assist=0) is None


def test_a_body_that_does_not_decode_is_dropped_and_the_rest_move(redis_client: Any) -> None:
    broker = RedisBroker(client=redis_client, namespace=f"fairtest-{uuid.uuid4().hex[:8]}", middleware=[])
    fair = FairQueue(redis_client, prefix=PREFIX)
    dispatcher = Dispatcher(fair, broker, FairConfig(window=10))
    dispatcher.step()
    # Given a body that is not a Dramatiq message between two good ones
    good = _pairs([_message("store-a", n) for n in range(2)])
    fair.submit("store-a", BULK, [good[0], ("not-a-message", b"{not json"), good[1]], assist=0)
    # When the dispatcher moves them, then the good ones are queued and the bad one is gone
    assert dispatcher.step() == 3
    assert broker.do_qsize("batch") == 2
    assert fair.depth().total == 0 and fair.depth().moving == 0
    assert not redis_client.hexists(PREFIX + "bodies", "not-a-message")


# --- on the Procfile's batch worker --------------------------------------------------------


@pytest.fixture
def fair_broker(lane: Any) -> Iterator[RedisBroker]:
    """A client of the lane's Redis that submits as the API does: through the fair lane."""
    broker = RedisBroker(url=lane.redis.url, middleware=[FairDispatch(lane.client, FairConfig())])
    broker.declare_queue("batch")
    deadline = time.monotonic() + 10
    while not lane.client.exists("wandstore:fair:on"):  # the worker's dispatcher announced itself
        assert time.monotonic() < deadline, "no dispatcher runs"
        time.sleep(0.01)
    yield broker
    broker.close()


def _ended(status: Any, job: str, timeout_s: float = 120) -> dict[str, Any]:
    """The job's status once it ended, polled (the rest of its queue may still be busy)."""
    deadline = time.monotonic() + timeout_s
    while (info := status.get(job) or {}).get("status") not in ("done", "failed"):
        assert time.monotonic() < deadline, f"job {job} did not end in {timeout_s}s: {info}"
        time.sleep(0.02)
    return dict(info)


def _products(store: str, count: int) -> list[dict[str, Any]]:
    base = sample_products()[0]
    return [{**base, "id": str(10**9 + n), "title": f"{store} product {n}"} for n in range(count)]


def test_a_flooding_store_does_not_hold_another_stores_job_back(
    lane: Any, fair_broker: RedisBroker, gateway: Any
) -> None:
    from pipelines.batches import Batches
    from pipelines.submit import submit_product_copy

    # Given a slow model (300 ms a call) and store A's catalog batch of 400 products
    gateway.config(latency_ms=300)
    try:
        batch = Batches(fair_broker, lane.status).submit_catalog_copy("flood-a", _products("flood-a", 400))
        a_jobs = [j.decode() for j in lane.client.lrange(f"wandstore:batch:{batch.id}:jobs", 0, -1)]
        assert len(a_jobs) == 400
        # When store B asks for one product's copy right after
        b_job = submit_product_copy(fair_broker, lane.status, "quiet-b", _products("quiet-b", 1)[0])
        # (A's jobs waiting their turn in the lane have no message yet: they are not taken for lost)
        waiting = lane.client.hlen("wandstore:fair:bodies")
        # (jobs other tests dropped on this lane may be reported lost, rightly: only A's and B's count)
        found = reconcile(fair_broker, lost_after_s=0, limit=10_000)
        assert found.checked >= len(a_jobs)  # A's jobs were looked at, and none was taken for lost
        assert not set(found.lost) & {*a_jobs, b_job}
        b = _ended(lane.status, b_job)  # (not wait_job: it joins the queue, A's backlog too)
        assert b["status"] == "done"
        pipe = lane.client.pipeline(transaction=False)
        for job in a_jobs:
            pipe.hget(f"wandstore:job:{job}", "started_at")
        # (a job not started yet is behind B too)
        a_started = [float(t) if t is not None else float("inf") for t in pipe.execute()]
        ahead = [t for t in a_started if b["created_at"] < t < b["started_at"]]
        behind = [t for t in a_started if t > b["started_at"]]
        # Then more of A's jobs than a window were waiting when B arrived (first in, first out,
        # every one of them would have started first) ...
        assert len(ahead) + len(behind) > WINDOW + 40
        # ... and B started after at most a window of them: its wait is bounded by the window,
        # not by A's backlog (whatever the machine's speed)
        assert len(ahead) <= WINDOW + 2, f"{len(ahead)} of A's jobs started while B waited"
        assert behind, "B started only after A's whole backlog"
        assert waiting > 0
    finally:
        # Leave the lane empty for the next test: A's rest dropped (the lane's keys, the queue).
        gateway.config(latency_ms=0)
        lane.drop_batch()


def test_a_plain_dramatiq_clients_message_on_batch_still_runs(lane: Any) -> None:
    # Given a Dramatiq client that knows only the actor's name and queue
    job = send_plain(lane.broker, "product_copy", "batch", "plain-client", sample_products()[1], {})
    # Then the batch worker runs it, dispatcher or not
    info = wait_job(lane.status, job, timeout_s=90)  # the batch worker yields the CPU on a busy machine
    assert info["status"] == "done"
    assert info["store"] == "plain-client"


# --- deliveries, on the session worker -----------------------------------------------------


class SlowReceiver:
    """Holds `/slow` until released (past a delivery's timeout); answers `/fast` at once."""

    def __init__(self) -> None:
        receiver = self
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.slow_now = self.slow_peak = self.slow_done = 0
        self.fast: list[float] = []
        self.fast_while: list[tuple[int, int]] = []  # (slow in flight, slow done) as each fast one came

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/slow":
                    with receiver.lock:
                        receiver.slow_now += 1
                        receiver.slow_peak = max(receiver.slow_peak, receiver.slow_now)
                    self._hang()
                    with receiver.lock:
                        receiver.slow_now -= 1
                        receiver.slow_done += 1
                else:
                    with receiver.lock:
                        receiver.fast.append(time.time())
                        receiver.fast_while.append((receiver.slow_now, receiver.slow_done))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _hang(self) -> None:
                """Until released, or until the sender gave up and closed the connection."""
                while not receiver.release.is_set():
                    readable, _, _ = select.select([self.connection], [], [], 0.005)
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):
                        return

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_slow_receiver_slows_only_its_own_stores_deliveries(
    api: Any, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.signing import WebhookSecrets
    from entrypoints import compose
    from pipelines.submit import submit_product_copy

    settings = compose.services().settings
    monkeypatch.setattr(settings, "webhook_timeout_s", 1.0)  # short, so the test is
    cap = settings.webhook_store_concurrency  # the default, 4
    ctx, receiver = api.ctx, SlowReceiver()
    try:
        for store in ("slow-a", "fast-b"):
            WebhookSecrets(ctx.redis).get_or_create(store)
        # Given store A's 12 jobs whose receiver hangs past the timeout
        for product in _products("slow-a", 12):
            extra = {"callback_url": f"{receiver.url}/slow"}
            submit_product_copy(ctx.broker, ctx.status, "slow-a", product, extra=extra)
        deadline = time.monotonic() + 20
        while receiver.slow_peak < cap:
            assert time.monotonic() < deadline, "A's deliveries never reached the receiver"
            time.sleep(0.01)
        # When store B's job finishes, its receiver is fast
        extra = {"callback_url": f"{receiver.url}/fast"}
        b_job = submit_product_copy(ctx.broker, ctx.status, "fast-b", _products("fast-b", 1)[0], extra=extra)
        deadline = time.monotonic() + 20
        while not receiver.fast:
            assert time.monotonic() < deadline, "B's delivery never arrived"
            time.sleep(0.01)
        # Then B's arrives within a couple of seconds of its job's end, while A's still hang
        finished = float(ctx.status.get(b_job)["finished_at"])
        assert receiver.fast[0] - finished < 2.0
        assert receiver.slow_now > 0
        # And A never had more than its cap of deliveries in flight
        assert receiver.slow_peak == cap
    finally:
        receiver.close()


def test_a_slow_callback_receiver_holds_only_its_own_stores_places(redis_client: Any) -> None:
    from adapters.settings import load_settings
    from adapters.signing import WebhookSecrets
    from pipelines.delivery import deliver_callback
    from tests.helpers import arun

    # Settings changed: 2 places per store, a 5 s timeout, one attempt, loopback receivers allowed
    settings = load_settings(
        callback_store_concurrency=2,
        callback_timeout_s=5.0,
        callback_max_attempts=1,
        webhook_allow_private_hosts=True,
    )
    store_a, store_b = (f"callbacks-{x}-{uuid.uuid4().hex[:6]}" for x in "ab")
    for store in (store_a, store_b):
        WebhookSecrets(redis_client).get_or_create(store)
    receiver = SlowReceiver()

    async def scene() -> float:
        def send(store: str, path: str, n: int) -> Any:
            payload = {"event": "generation.finished", "id": f"cb-{n}", "store": store}
            url = f"{receiver.url}/{path}"
            return deliver_callback(redis_client, settings, url, payload, job_id="", delivery_id=f"cb-{n}")

        # Given store A's six callbacks to a receiver that hangs past the timeout
        slow = [asyncio.ensure_future(send(store_a, "slow", n)) for n in range(6)]
        deadline = time.monotonic() + 10
        while receiver.slow_peak < 2:
            assert time.monotonic() < deadline, "A's callbacks never reached the receiver"
            await asyncio.sleep(0.005)
        # When store B's callback is sent meanwhile
        sent = time.time()
        await send(store_b, "fast", 99)
        receiver.release.set()  # then A's receiver answers: the rest of A's go through at once
        await asyncio.gather(*slow)
        return receiver.fast[0] - sent if receiver.fast else float("inf")

    try:
        b_after = arun(scene())
    finally:
        receiver.close()
    # Then B's arrived while A's two were still held and none of A's had ended (held behind A's
    # places, it would have waited for their 5 s timeout), and A never had more than two in flight
    assert receiver.fast_while == [(2, 0)]
    assert b_after < 5.0
    assert receiver.slow_peak == 2
