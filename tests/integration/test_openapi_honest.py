"""The OpenAPI document says what the service answers: every real refusal is declared for its
route and matches the declared schema; refusals are counted under their route; every 503 says
when to retry; a pipeline has one name, even in records written before; a spent budget is
refused at the CLI too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from typer.testing import CliRunner

from tests.conftest import sample_products
from tests.fixtures.api import BODY_LIMIT, OPS_TOKEN, ApiHarness, serve_app

STORE = "stanley1913"
OTHER = "electricshop"


def _operation(doc: dict[str, Any], method: str, template: str) -> dict[str, Any]:
    op: dict[str, Any] = doc["paths"][template][method.lower()]
    return op


def assert_declared(doc: dict[str, Any], method: str, template: str, response: httpx.Response) -> None:
    """`response` is declared for the route, and its body validates against the declared schema."""
    declared = _operation(doc, method, template)["responses"]
    status = str(response.status_code)
    assert status in declared, f"{method} {template} answered {status}, which it does not declare"
    schema = declared[status]["content"]["application/json"]["schema"]
    # Resolve the document's `$ref`s: the schema, with the components beside it.
    root = {**schema, "components": doc["components"]}
    jsonschema.Draft202012Validator(root).validate(response.json())
    for header, spec in declared[status].get("headers", {}).items():
        if spec.get("required"):
            assert header.lower() in response.headers, f"{status} without its required {header}"


@pytest.fixture
def doc(api: ApiHarness) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{api.url}/openapi.json").json()
    return document


def test_real_refusals_are_declared_in_the_shape_the_service_answers(api: ApiHarness, doc: Any) -> None:
    generations = "/v1/stores/{store}/generations"
    copy = {"pipeline": "product_copy", "input": {"product": sample_products(STORE)[0]}}
    anonymous, mine = api.client(None), api.client(STORE)
    answers = [
        ("POST", generations, anonymous.post(f"/v1/stores/{STORE}/generations", json=copy)),  # 401
        ("POST", generations, mine.post(f"/v1/stores/{OTHER}/generations", json=copy)),  # 403
        (
            "POST",
            generations,
            api.client("ops").post("/v1/stores/nobody-added/generations", json=copy),
        ),  # 404
        ("POST", generations, mine.post(f"/v1/stores/{STORE}/generations", content=b"x" * (BODY_LIMIT + 1))),
        ("POST", generations, mine.post(f"/v1/stores/{STORE}/generations", json={"pipeline": "poetry"})),
        ("POST", generations, mine.post(f"/v1/stores/{STORE}/generations", content=b"{not json")),
        ("POST", generations, mine.post("/v1/stores/NOT A SLUG/generations", json=copy)),  # 422, the gate
        (
            "POST",
            generations,
            mine.post(f"/v1/stores/{STORE}/generations", json={**copy, "input": {"product": {"id": "../x"}}}),
        ),
        ("GET", "/v1/generations/{id}", mine.get("/v1/generations/00000000-0000-4000-8000-000000000000")),
        ("GET", "/v1/generations/{id}", mine.get("/v1/generations/not-an-id")),
        ("GET", "/v1/batches/{id}", mine.get("/v1/batches/00000000-0000-4000-8000-000000000000")),
        ("GET", "/v1/stores/{store}/costs", mine.get(f"/v1/stores/{STORE}/costs?by=colour")),
        (
            "GET",
            "/v1/stores/{store}/outputs/{key}",
            mine.get(f"/v1/stores/{STORE}/outputs/stores/{OTHER}/products/1/copy.json"),
        ),
        (
            "GET",
            "/v1/stores/{store}/outputs/{key}",
            mine.get(f"/v1/stores/{STORE}/outputs/stores/{STORE}/none.json"),
        ),
    ]
    statuses = {response.status_code for _, _, response in answers}
    assert statuses >= {401, 403, 404, 413, 422}, statuses
    for method, template, response in answers:
        assert_declared(doc, method, template, response)


def test_a_rate_limited_request_is_declared_and_counted_under_its_route(api: ApiHarness) -> None:
    from adapters.settings import load_settings
    from entrypoints import compose
    from entrypoints.api import create_app

    # Given an API that allows one request per window
    settings = load_settings(ops_api_token=OPS_TOKEN, api_rate_limit=1, api_rate_window_s=60)
    ctx = compose.api_context(settings, store=api.ctx.store)
    token = api.token_for("rate-limited")
    with serve_app(create_app(ctx)) as running:
        doc = httpx.get(f"{running.url}/openapi.json").json()
        client = running.client(token)
        # When a store asks twice, then a scanner asks for a path no route takes
        answers = [client.get("/v1/stores/rate-limited/costs") for _ in range(2)]
        httpx.get(f"{running.url}/no/such/path")
        metrics = httpx.get(f"{running.url}/metrics").text
    ctx.pools.close()
    # Then the second is a declared 429 with Retry-After
    assert answers[1].status_code == 429
    assert_declared(doc, "GET", "/v1/stores/{store}/costs", answers[1])
    # And the refusal is counted under the route it asked for, the unknown path as `unmatched`
    assert 'route="/v1/stores/{store}/costs",status="429"' in metrics
    assert 'route="unmatched",status="404"' in metrics


def test_gate_refusals_are_counted_under_their_route(api: ApiHarness) -> None:
    # When a request without a token and one over the body cap are refused before routing
    api.client(None).get(f"/v1/stores/{STORE}/themes")
    api.client(STORE).post(f"/v1/stores/{STORE}/catalog-copy", content=b"x" * (BODY_LIMIT + 1))
    metrics = httpx.get(f"{api.url}/metrics").text
    # Then each is counted under its route template, not `unmatched`
    assert 'method="GET",route="/v1/stores/{store}/themes",status="401"' in metrics
    assert 'method="POST",route="/v1/stores/{store}/catalog-copy",status="413"' in metrics


@pytest.fixture
def unhealthy(api: ApiHarness, tmp_path: Any) -> Iterator[Any]:
    """An API over a local store whose disk is 'full' (below LOCAL_STORE_MIN_FREE_BYTES): it is down."""
    from adapters.settings import load_settings
    from adapters.store import LocalStore
    from entrypoints import compose
    from entrypoints.api import create_app

    settings = load_settings(
        ops_api_token=OPS_TOKEN,
        local_store_min_free_bytes=2**62,
        api_health_interval_s=0.1,
        shopify_webhook_secret=None,
    )
    ctx = compose.api_context(settings, store=LocalStore(tmp_path))
    with serve_app(create_app(ctx)) as running:
        yield running
    ctx.pools.close()


def test_every_503_says_when_to_retry(unhealthy: Any, api: ApiHarness) -> None:
    # When /healthz is down, asked anonymously and by ops
    public = httpx.get(f"{unhealthy.url}/healthz", timeout=10)
    ops = httpx.get(f"{unhealthy.url}/healthz", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    # And Shopify delivers to a service that has no SHOPIFY_WEBHOOK_SECRET
    shopify = httpx.post(f"{unhealthy.url}/v1/shopify/webhooks", content=b"{}")
    # Then every 503 carries Retry-After
    assert public.status_code == ops.status_code == shopify.status_code == 503
    for response in (public, ops, shopify):
        assert int(response.headers["retry-after"]) >= 1, response.headers
    assert shopify.json()["error"]["code"] == "not_configured"


def test_old_spellings_in_stored_records_read_as_the_pipelines_names(api: ApiHarness) -> None:
    from adapters.costs import cost_report
    from adapters.ledger import LEDGER, Ledger
    from pipelines.status import JobStatus

    # Given a job status and ledger counters written with the actors' names
    job = "0e0e0e0e-2222-4333-8444-555566667777"
    JobStatus(api.ctx.redis).queued(job, pipeline="build_theme", store=STORE, queue="batch")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    api.ctx.redis.hset(f"{LEDGER}old-names:{day}", "personalize|personalizer|m|personalizer@v1|calls", 3)
    api.ctx.redis.zadd("wandstore:ledger:days", {f"{day}|old-names": int(day.replace("-", ""))})
    # When they are read through the API and the costs report
    status = api.client(STORE).get(f"/v1/generations/{job}").json()
    rows = cost_report(Ledger(api.ctx.redis), store="old-names", by=("pipeline",))["rows"]
    # Then they carry the pipelines' names
    assert status["pipeline"] == "theme_build"
    assert rows == [{**rows[0], "pipeline": "personalization", "calls": 3}]


def test_enqueue_refuses_a_store_whose_budget_is_spent(api: ApiHarness, tmp_path: Any) -> None:
    from adapters.ledger import Ledger
    from entrypoints.cli.main import app

    store = "cli-budget-spent"
    api.token_for(store)  # adds the store
    products = tmp_path / "products.json"
    products.write_text(json.dumps({"products": sample_products(STORE)[:2]}))
    ledger = Ledger(api.ctx.redis)
    ledger.set_budget(store, 0)
    try:
        # When its copy is enqueued from the command line
        result = CliRunner().invoke(
            app, ["enqueue", "product-copy", "--store", store, "--input", str(products)]
        )
    finally:
        ledger.clear_budget(store)
    # Then it exits 2 naming the budget and how to raise it, and nothing was enqueued
    assert result.exit_code == 2, result.output
    assert "daily budget" in result.output and f"budget set {store}" in result.output
    assert not [
        k
        for k in api.ctx.redis.scan_iter(match="wandstore:job:*")
        if api.ctx.redis.hget(k, "store") == store.encode()
    ]


def _component(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}


def test_published_documents_match_their_declared_output_schemas(api: ApiHarness, doc: Any) -> None:
    from entrypoints import compose
    from pipelines.delivery import encode, job_envelope
    from pipelines.theme_build import build_theme, save_catalog
    from tests.helpers import arun

    client = api.client("ops")
    # Given product copy asked for through the API, and a theme built and published
    posted = client.post(
        f"/v1/stores/{STORE}/generations",
        json={"pipeline": "product_copy", "input": {"product": sample_products(STORE)[3]}},
    )
    assert posted.status_code == 202, posted.text
    svc = compose.services()
    save_catalog(svc.store, STORE, {"products": sample_products(STORE)[:12]})
    brief = {"description": "Rugged drinkware for long days outdoors", "palette_hint": "forest green"}
    theme = arun(build_theme(svc, STORE, brief, build_id="0e0e0e0e-3333-4444-8555-666677778888"))
    deadline = time.monotonic() + 30
    while (status := client.get(posted.json()["status_url"]).json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, status
        time.sleep(0.02)
    # When the status and the published documents are read through the API
    copy = client.get(status["output_urls"][0]).json()
    theme_doc = client.get(f"/v1/stores/{STORE}/outputs/{theme.theme_key}").json()
    # Then each matches the schema the document declares for it
    jsonschema.Draft202012Validator(_component(doc, "GenerationStatus")).validate(status)
    jsonschema.Draft202012Validator(_component(doc, "ProductCopyDocument")).validate(copy)
    jsonschema.Draft202012Validator(_component(doc, "ThemeDocument")).validate(theme_doc)
    assert status["pipeline"] == copy["meta"]["pipeline"] == "product_copy"
    assert theme_doc["meta"]["pipeline"] == "theme_build"
    # And the webhook a callback_url would receive for the copy job matches the declared webhook body
    envelope = job_envelope(svc.status.get(posted.json()["id"]) or {}, api.ctx.store)
    jsonschema.Draft202012Validator(_component(doc, "GenerationFinished")).validate(
        json.loads(encode(envelope))
    )
    assert envelope["output"] == copy


def test_a_personalization_document_matches_its_declared_schema(api: ApiHarness, doc: Any) -> None:
    from entrypoints import compose
    from pipelines.personalize import personalize_shopper
    from pipelines.theme_build import save_catalog
    from tests.helpers import arun

    # Given a shopper's storefront personalized and published
    svc = compose.services()
    save_catalog(svc.store, STORE, {"products": sample_products(STORE)[:12]})
    published = arun(personalize_shopper(svc, STORE, "openapi-shopper", {"segment": "returning"}))
    # When it is read through the API
    body = api.client("ops").get(f"/v1/stores/{STORE}/outputs/{published.key}").json()
    # Then it matches the declared schema, under the pipeline's one name
    jsonschema.Draft202012Validator(_component(doc, "PersonalizationDocument")).validate(body)
    assert body["meta"]["pipeline"] == "personalization"


def test_the_budget_gate_opens_until_the_whole_budget_is_spent(api: ApiHarness) -> None:
    from adapters.ledger import Entry, Ledger, today, usd_to_nano
    from pipelines.budget_gate import spent_budget

    ledger = Ledger(api.ctx.redis)
    store = "budget-edge"

    def spend(usd: str, n: int) -> None:
        entry = Entry(
            f"edge-{n}", store, today(), "product_copy", "a", "m", "p@v1", {"cost_nano": usd_to_nano(usd)}
        )
        ledger.settle(entry)

    ledger.set_budget(store, usd_to_nano("1"))
    try:
        # Given a store that has spent just under its $1 budget
        spend("0.999999999", 1)
        below = spent_budget(ledger, store, daily_budget_usd=50.0)
        # When it spends the last nano-dollar
        spend("0.000000001", 2)
        at = spent_budget(ledger, store, daily_budget_usd=50.0, now=86400 * 20000 + 3600)
    finally:
        ledger.clear_budget(store)
    # Then new work is refused only once the whole budget is spent, until the UTC day ends
    assert below is None
    assert at is not None and at.retry_after_s == 23 * 3600
    assert (
        "daily budget of $1" in at.message
        and "$1 spent" in at.message
        and "budget set budget-edge" in at.message
    )


def test_a_503_that_names_no_wait_still_says_when_to_retry() -> None:
    from entrypoints.api.errors import error_response

    # When any layer answers 503 without a Retry-After of its own, or with one
    plain = error_response(503, "unavailable", "Redis is unavailable")
    own = error_response(503, "unavailable", "the store is failing", headers={"Retry-After": "9"})
    # Then both say when to come back, the layer's own wait kept
    assert plain.headers["retry-after"] == "5" and own.headers["retry-after"] == "9"


def test_every_route_declares_its_refusals_in_the_error_shape(doc: Any) -> None:
    error = "#/components/schemas/ErrorResponse"
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            # Every /v1/ route but Shopify's (signed, not gated) can be refused by the gate
            if path.startswith("/v1/") and path != "/v1/shopify/webhooks":
                assert {"401", "403", "429", "503"} <= set(responses), where
            if "{store}" in path and path.startswith("/v1/"):
                assert "422" in responses, where  # a slug that could never be one
            if method in ("post", "put"):
                assert {"408", "413"} <= set(responses), where  # every body is read within a cap
            for status, response in responses.items():
                if status.startswith(("4", "5")) and path != "/healthz":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": error}, f"{where} {status}: {schema}"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
