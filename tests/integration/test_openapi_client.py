"""A client generated from the served OpenAPI document works: requests, statuses and real errors.

openapi-python-client (pinned in the `dev` extra) generates the client offline, into a
temporary folder, from `/openapi.json` as the running API serves it. The client then creates
a generation, reads its status, and parses a 422, a 403 and a 402 into the typed error model:
if the document declared a shape the service does not answer, the error would land in
"additional properties" (or not parse at all) and these tests would fail.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.conftest import sample_products
from tests.fixtures.api import OPS_TOKEN, ApiHarness

STORE = "stanley1913"
OTHER = "electricshop"
PACKAGE = "wandstore_client"


@pytest.fixture(scope="module")
def generated(api_server: ApiHarness, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package, generated from the served document (no network: a local file)."""
    where = tmp_path_factory.mktemp("client")
    doc = where / "openapi.json"
    doc.write_bytes(httpx.get(f"{api_server.url}/openapi.json").content)
    config = where / "config.yaml"
    # No post hooks: the generated code is imported, not linted (ruff would add a second or two).
    config.write_text(f"post_hooks: []\nproject_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\n")
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(doc)]
    command += ["--config", str(config), "--meta", "none", "--output-path", str(where / PACKAGE)]
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Every route and model is generated: the tool warns about any part of the document it skips.
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Warning" not in out.stdout + out.stderr, out.stdout + out.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def _client(package: ModuleType, api: ApiHarness, store: str) -> Any:
    return package.AuthenticatedClient(
        base_url=api.url, token=api.token_for(store), raise_on_unexpected_status=True
    )


def _copy_request(product: dict[str, Any]) -> Any:
    models = _module("models")
    return models.ProductCopyRequest.from_dict({"pipeline": "product_copy", "input": {"product": product}})


def test_a_generated_client_creates_a_generation_and_reads_its_status(
    api: ApiHarness, generated: ModuleType
) -> None:
    create = _module("api.generations.create_generation")
    get = _module("api.generations.get_generation")
    models = _module("models")
    client = _client(generated, api, STORE)
    # When the generated client asks for product copy
    answer = create.sync_detailed(store=STORE, client=client, body=_copy_request(sample_products(STORE)[0]))
    # Then it is accepted, as the typed model
    assert answer.status_code == 202, answer.content
    accepted = answer.parsed
    assert isinstance(accepted, models.Accepted) and accepted.status == "queued"
    # And its status reads back, typed, under the pipeline's one name
    status = get.sync(id=accepted.id, client=client)
    assert isinstance(status, models.GenerationStatus)
    assert status.id == accepted.id and status.pipeline == "product_copy" and status.store == STORE
    assert status.status in ("queued", "running", "done")


def test_a_422_parses_into_the_error_model_naming_the_field(api: ApiHarness, generated: ModuleType) -> None:
    create = _module("api.generations.create_generation")
    models = _module("models")
    client = _client(generated, api, STORE)
    # When a product id that could never be a key is sent
    answer = create.sync_detailed(
        store=STORE, client=client, body=_copy_request({"id": "../etc/passwd", "title": "A mug"})
    )
    # Then the 422 is the typed error, every field in place and nothing left over
    assert answer.status_code == 422
    error = answer.parsed
    assert isinstance(error, models.ErrorResponse), answer.content
    for part in (error, error.error, *error.error.details):
        assert getattr(part, "additional_properties", {}) == {}, part
    assert error.error.code == "invalid_request"
    detail = error.error.details[0]
    assert detail.field == "input.product.id" and detail.rule and "../etc/passwd" in detail.message


def test_a_403_parses_into_the_error_model(api: ApiHarness, generated: ModuleType) -> None:
    create = _module("api.generations.create_generation")
    models = _module("models")
    # When one store's token asks for another store's generation
    client = _client(generated, api, STORE)
    api.token_for(OTHER)
    answer = create.sync_detailed(store=OTHER, client=client, body=_copy_request(sample_products(OTHER)[0]))
    # Then the 403 is the typed error
    assert answer.status_code == 403
    assert isinstance(answer.parsed, models.ErrorResponse), answer.content
    assert answer.parsed.error.code == "forbidden" and OTHER in answer.parsed.error.message


def test_a_spent_budget_is_a_402_before_anything_is_enqueued(api: ApiHarness, generated: ModuleType) -> None:
    from adapters.ledger import Ledger

    create = _module("api.generations.create_generation")
    batch = _module("api.batches.create_catalog_copy")
    models = _module("models")
    store = "budget-spent"
    api.token_for(store)  # adds the store
    client = generated.AuthenticatedClient(base_url=api.url, token=OPS_TOKEN)
    # Given a store whose daily budget is zero (so spent)
    Ledger(api.ctx.redis).set_budget(store, 0)
    try:
        # When it asks for copy, and for a catalog batch
        one = create.sync_detailed(store=store, client=client, body=_copy_request(sample_products(STORE)[0]))
        many = batch.sync_detailed(
            store=store,
            client=client,
            body=models.CatalogCopyRequest.from_dict({"products": sample_products(STORE)[:2]}),
        )
    finally:
        Ledger(api.ctx.redis).clear_budget(store)
    # Then both are 402 in the error shape, naming the budget and `budget set`, with Retry-After
    for answer in (one, many):
        assert answer.status_code == 402, answer.content
        assert isinstance(answer.parsed, models.ErrorResponse)
        assert answer.parsed.error.code == "budget_exhausted"
        assert "budget set budget-spent" in answer.parsed.error.message
        assert 1 <= int(answer.headers["retry-after"]) <= 24 * 3600
    # And nothing was enqueued
    assert not [
        k
        for k in api.ctx.redis.scan_iter(match="wandstore:job:*")
        if api.ctx.redis.hget(k, "store") == store.encode()
    ]


def test_the_signed_webhook_is_declared(api: ApiHarness) -> None:
    doc = httpx.get(f"{api.url}/openapi.json").json()
    hook = doc["webhooks"]["generation.finished"]["post"]
    headers = {p["name"] for p in hook["parameters"] if p["in"] == "header"}
    assert {"X-Wandstore-Signature", "X-Wandstore-Delivery", "X-Wandstore-Event"} <= headers
    body = hook["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/GenerationFinished")
    union = doc["components"]["schemas"]["GenerationFinished"]
    assert union["discriminator"]["propertyName"] == "pipeline"
    assert set(union["discriminator"]["mapping"]) == {"product_copy", "personalization", "theme_build"}
