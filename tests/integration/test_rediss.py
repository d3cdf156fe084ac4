"""Under `rediss://` (TLS, as managed Redis services speak) the service runs the code it runs on plain TCP."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis

from tests.conftest import sample_products
from tests.fixtures.tls import TlsFront, tls_front
from tests.helpers import arun


@pytest.fixture(scope="module")
def rediss(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFront]:
    """The session Redis behind TLS (`rediss.url()`)."""
    with tls_front(redis_server.port, tmp_path_factory.mktemp("tls")) as front:
        yield front


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def test_a_job_accounts_and_caches_over_tls(rediss: TlsFront, redis_client: Any, tmp_path: Path) -> None:
    from adapters.costs import cost_report
    from adapters.ledger import Ledger
    from adapters.settings import load_settings
    from adapters.store import LocalStore
    from entrypoints import compose
    from pipelines.product_copy import generate_product_copy

    # Given the service's clients built from a rediss:// URL
    settings = load_settings(redis_url=rediss.url(), local_store_dir=tmp_path / "objects")
    svc = compose.build_services(settings)
    svc.store = LocalStore(tmp_path / "objects")
    assert isinstance(svc.redis.connection_pool.get_connection(), redis.SSLConnection)
    product = sample_products("electricshop")[5]
    # When a product's copy is made twice, as two jobs would, and their status is kept
    svc.status.started("tls-job-1", status="running", pipeline="product_copy")
    first = arun(generate_product_copy(svc, "electricshop", product, job_id="tls-job-1"))
    svc.status.finished("tls-job-1", "done", batch_prefix="wandstore:test:", batch_ttl_s=60, status="done")
    second = arun(generate_product_copy(svc, "electricshop", product, job_id="tls-job-2"))
    # Then budget holds, the ledger and the result cache worked through TLS connections
    assert (first.meta["served"], second.meta["served"]) == ("fresh", "result_cache")
    totals = cost_report(Ledger(redis_client))["totals"]
    assert totals["calls"] == 1 and totals["result_cache_hits"] == 1
    assert svc.status.get("tls-job-1")["status"] == "done"  # type: ignore[index]
    assert rediss.connections >= 2  # the sync client's and the event loop's asyncio client's


def test_the_interactive_lane_is_woken_and_dead_letters_over_tls(rediss: TlsFront) -> None:
    from adapters.redis_conn import get_redis
    from pipelines.broker import WandstoreBroker
    from pipelines.dead_letters import DeadLetters
    from pipelines.fastlane import WokenConsumer

    # Given a fast queue's idle consumer over TLS that would poll only every 3 s
    namespace = f"tls-{uuid.uuid4().hex[:8]}"
    client = get_redis(rediss.url())
    broker = WandstoreBroker(client=client, poll_ms={"probe": 3000}, wake_ms=6000, namespace=namespace)
    broker.declare_queue("probe")
    consumer = broker.consume("probe", prefetch=4)
    assert isinstance(consumer, WokenConsumer)
    got: list[Any] = []

    def consume() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not got:
            message = next(consumer)
            if message is not None:
                got.append((message, time.monotonic()))

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.3)  # it fetched nothing and is waiting on its subscription
    # When an undecodable body and then a message are pushed
    broker.do_enqueue("probe", str(uuid.uuid4()), b"\xff not a message")
    sent_at = time.monotonic()
    broker.enqueue(dramatiq.Message(queue_name="probe", actor_name="a", args=(), kwargs={}, options={}))
    thread.join(timeout=10)
    # Then the consumer had the message at once, and the bad body is a dead letter with its reason
    assert got and got[0][1] - sent_at < 1.0
    consumer.ack(got[0][0])
    (letter,) = DeadLetters(client, namespace).list("probe")
    assert letter.message is None and letter.reason.startswith("undecodable message: ")
    assert client.scard(f"{namespace}:__acks__.{broker.broker_id}.probe") == 0
    consumer.close()
