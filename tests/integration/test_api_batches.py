"""Catalog-copy batches over HTTP: inline products or an export in the object store."""

from __future__ import annotations

import json
from typing import Any

from adapters.store import put_json
from tests.conftest import sample_products
from tests.fixtures.api import ApiHarness
from tests.integration.test_api import jobs_of_store, merchant_client, poll

STORE = "electricshop"


def test_inline_batch_counts_done_and_failed_with_reasons(api: ApiHarness) -> None:
    # Given three good products, one without a title and one that is not a product at all
    client = merchant_client(api, STORE)
    good = sample_products(STORE)[20:23]
    untitled = {**sample_products(STORE)[23], "title": ""}
    products: list[Any] = [*good, untitled, "not a product"]
    # When they are POSTed as one catalog-copy batch
    response = client.post(f"/v1/stores/{STORE}/catalog-copy", json={"products": products})
    assert response.status_code == 202, response.text
    accepted = response.json()
    # Then the invalid ones are failures at once, with reasons naming the field
    assert accepted["total"] == 5 and accepted["failed"] == 2 and accepted["state"] in ("running", "finished")
    reasons = {f["index"]: f["reason"] for f in accepted["failures"]}
    assert "title" in reasons[3] and "String should have at least 1 character" in reasons[3]
    assert "must be a JSON object" in reasons[4]
    assert accepted["failures"][0]["product_id"] == str(untitled["id"])
    # And once the worker is through, the good ones are done
    final = poll(client, accepted["status_url"])
    assert (final["total"], final["done"], final["failed"], final["pending"]) == (5, 3, 2, 0)
    assert final["state"] == "finished"
    for product in good:
        key = f"stores/{STORE}/products/{product['id']}/copy.json"
        assert client.get(f"/v1/stores/{STORE}/outputs/{key}").status_code == 200


def test_failed_jobs_of_a_batch_are_listed_with_their_reason(api: ApiHarness) -> None:
    from tests.fixtures.gateway import start_session_gateway

    # Given the model answers schema-invalid output to every call of one product's job
    gateway = start_session_gateway()
    gateway.faults([{"kind": "invalid_output", "times": 2}])
    product = {**sample_products(STORE)[30], "title": "Batch product that fails"}
    client = api.client("ops")
    try:
        # When it is submitted as a one-product batch (fresh, so no cache can answer)
        accepted = client.post(
            f"/v1/stores/{STORE}/catalog-copy", json={"products": [product], "options": {"force_fresh": True}}
        ).json()
        final = poll(client, accepted["status_url"])
    finally:
        gateway.clear_faults()
    # Then the batch counts it failed, with the job id, product id and the job's reason
    assert (final["done"], final["failed"]) == (0, 1)
    (failure,) = final["failures"]
    assert failure["product_id"] == str(product["id"]) and failure["job_id"]
    assert "invalid output after one repair" in failure["reason"]


def test_batch_from_an_export_in_the_object_store(api: ApiHarness) -> None:
    # Given a Shopify products export uploaded to the store's own prefix
    export = {"products": sample_products(STORE)[40:44]}
    key = f"stores/{STORE}/imports/products-2026-11-25.json"
    put_json(api.ctx.store, key, export)
    client = merchant_client(api, STORE)
    # When its key is POSTed
    response = client.post(f"/v1/stores/{STORE}/catalog-copy", json={"export_key": key})
    assert response.status_code == 202, response.text
    # Then one job per product runs, and the batch finishes done
    final = poll(client, response.json()["status_url"])
    assert (final["total"], final["done"], final["failed"]) == (4, 4, 0)


def test_export_keys_outside_the_store_or_missing_are_refused(api: ApiHarness) -> None:
    client = merchant_client(api, STORE)
    put_json(api.ctx.store, "stores/stanley1913/imports/theirs.json", {"products": []})
    cases = {
        "stores/stanley1913/imports/theirs.json": "must be under 'stores/electricshop/'",
        f"stores/{STORE}/imports/missing.json": "no object",
        f"stores/{STORE}/../x.json": "'..' path segment",
    }
    for key, message in cases.items():
        response = client.post(f"/v1/stores/{STORE}/catalog-copy", json={"export_key": key})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["details"][0]["field"] == "export_key" and message in error["message"], error


def test_batch_requests_need_exactly_one_source_and_valid_options(api: ApiHarness) -> None:
    store = "batch-refused"
    client = merchant_client(api, store)
    both = client.post(f"/v1/stores/{store}/catalog-copy", json={"products": [{}], "export_key": "k"})
    neither = client.post(f"/v1/stores/{store}/catalog-copy", json={})
    bad_options = client.post(
        f"/v1/stores/{store}/catalog-copy",
        json={"products": sample_products(STORE)[:2], "options": {"locale": "not a locale"}},
    )
    for response in (both, neither, bad_options):
        assert response.status_code == 422, response.text
    assert "exactly one of 'products' and 'export_key'" in both.json()["error"]["message"]
    assert bad_options.json()["error"]["details"][0]["field"] == "options"
    assert "locale" in bad_options.json()["error"]["message"]
    assert jobs_of_store(api, store) == []


def test_batch_idempotency_key(api: ApiHarness) -> None:
    client = api.client("ops")
    body = {"products": sample_products(STORE)[50:52]}
    headers = {"Idempotency-Key": json.dumps({"import": 1})}
    # When the same batch is POSTed twice with one key
    first = client.post(f"/v1/stores/{STORE}/catalog-copy", json=body, headers=headers)
    second = client.post(f"/v1/stores/{STORE}/catalog-copy", json=body, headers=headers)
    # Then there is one batch
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    # And a key longer than 255 characters is refused, naming the header
    too_long = client.post(
        f"/v1/stores/{STORE}/catalog-copy", json=body, headers={"Idempotency-Key": "k" * 256}
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["details"][0]["field"] == "Idempotency-Key"


def test_a_finished_job_is_counted_despite_a_redis_blip(api: ApiHarness) -> None:
    import redis as redis_lib

    from pipelines.batches import Batches
    from pipelines.durable import DurableStatus
    from pipelines.followups import after_job

    class Blipping:
        """The real client, whose first two script calls fail as in a Redis blip."""

        connection_pool = None  # not plain TCP to the batcher: it calls through this client

        def __init__(self, real: Any) -> None:
            self.real, self.failures = real, 2

        def evalsha(self, *args: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise redis_lib.ConnectionError("Connection reset by peer")
            return self.real.evalsha(*args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    class Broker:
        client = Blipping(api.ctx.redis)

    # Given a batch job recorded as submitted (and not yet counted)
    status = api.ctx.status
    batch = Batches(api.ctx.broker, status)
    summary = batch.submit_catalog_copy("blip-store", [], None)
    status.queued(
        "11111111-2222-4333-8444-555555555555",
        pipeline="product_copy",
        store="blip-store",
        queue="batch",
        batch=summary.id,
    )
    # When its follow-up runs while Redis blips twice
    after_job(
        Broker(),
        DurableStatus(Broker.client),
        "11111111-2222-4333-8444-555555555555",
        "failed",
        status="failed",
    )
    # Then the job's end and the batch's count were recorded once Redis answered
    assert Broker.client.failures == 0
    assert api.ctx.status.get("11111111-2222-4333-8444-555555555555")["status"] == "failed"
    assert api.ctx.redis.sismember(
        f"wandstore:batch:{summary.id}:failed", "11111111-2222-4333-8444-555555555555"
    )
