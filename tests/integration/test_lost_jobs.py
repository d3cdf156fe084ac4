"""A queued job whose message vanished from Redis is reported lost: status, batch, metric, API, CLI."""

from __future__ import annotations

import json
import uuid
from typing import Any

from prometheus_client import REGISTRY
from typer.testing import CliRunner

from entrypoints.cli.main import app
from pipelines.broker import WandstoreBroker
from pipelines.lost_jobs import JobLocations, reconcile
from pipelines.status import OPEN, JobStatus
from pipelines.submit import submit_product_copy
from tests.conftest import sample_products

STORE = "stanley1913"


def _lost_count() -> float:
    return REGISTRY.get_sample_value("wandstore_jobs_lost_total", {"pipeline": "product_copy"}) or 0.0


def test_a_job_whose_message_is_gone_is_reported_lost_and_the_others_are_not(
    api: Any, redis_client: Any
) -> None:
    # Given three accepted product_copy jobs of one batch on a queue no worker consumes
    ns = f"lost-{uuid.uuid4().hex[:8]}"
    broker = WandstoreBroker(client=redis_client, namespace=ns, middleware=[JobLocations()])
    broker.declare_queue("batch")
    status = JobStatus(redis_client)
    products = sample_products(STORE)[:3]
    gone, kept, moved = (
        submit_product_copy(broker, status, STORE, p, extra={"batch": "b-lost"}) for p in products
    )
    # When one message is deleted from Redis by hand, and another's recorded copy is out of date
    # (as after a replay from the dead-letter queue)
    rid = status.get(gone)["redis_id"]  # type: ignore[index]
    redis_client.hdel(f"{ns}:batch.msgs", rid)
    redis_client.lrem(f"{ns}:batch", 0, rid)
    redis_client.hset(f"wandstore:job:{moved}", "redis_id", "not-this-copy")
    before = _lost_count()
    found = reconcile(broker, lost_after_s=0)
    # Then only that job is lost, with its reason, counted failed in its batch and by the metric
    assert found.lost == (gone,)
    lost = status.get(gone) or {}
    assert lost["status"] == "lost"
    assert "no longer in Redis" in lost["error"] and "submit it again" in lost["error"]
    assert redis_client.sismember("wandstore:batch:b-lost:failed", gone)
    assert _lost_count() == before + 1
    assert redis_client.zscore(OPEN, gone) is None
    # and the others are still queued; the moved one's current copy is recorded again
    assert {(status.get(j) or {}).get("status") for j in (kept, moved)} == {"queued"}
    assert (status.get(moved) or {})["redis_id"] != "not-this-copy"
    # and a second pass finds nothing new
    assert reconcile(broker, lost_after_s=0).lost == ()
    # and the API and the CLI show it lost, with what to do
    response = api.client(STORE).get(f"/v1/generations/{gone}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "lost"
    assert body["error"]["type"] == "JobLost" and "POST the generation again" in body["error"]["what_to_do"]
    out = CliRunner().invoke(app, ["status", gone, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["status"] == "lost"


def test_a_job_queued_moments_ago_is_never_judged(redis_client: Any) -> None:
    # Given a job whose message is gone but whose status was written just now
    ns = f"lost-{uuid.uuid4().hex[:8]}"
    broker = WandstoreBroker(client=redis_client, namespace=ns, middleware=[JobLocations()])
    broker.declare_queue("batch")
    status = JobStatus(redis_client)
    job = submit_product_copy(broker, status, STORE, sample_products(STORE)[0])
    redis_client.delete(f"{ns}:batch.msgs", f"{ns}:batch")
    # When the check runs with the default bound
    found = reconcile(broker, lost_after_s=120)
    # Then it waits: a submission can be between its status and its enqueue
    assert found.checked == 0 and found.lost == ()
    assert (status.get(job) or {})["status"] == "queued"
