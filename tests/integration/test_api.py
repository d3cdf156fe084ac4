"""The HTTP API over real HTTP: uvicorn on a free port, the session worker, Redis and dev gateway."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import sample_products
from tests.fixtures.api import BODY_LIMIT, OPS_TOKEN, ApiHarness, serve_app
from tests.fixtures.stores import add_sample_stores, add_store

STORE = "stanley1913"
OTHER = "electricshop"


def poll(client: httpx.Client, url: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """GET a status URL until the job is done or failed."""
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(url).json()
        if body.get("status") in ("done", "failed") or body.get("state") == "finished":
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not finish in {timeout_s}s: {body}")
        time.sleep(0.02)


def copy_request(product: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"pipeline": "product_copy", "input": {"product": product}, **extra}


def jobs_of_store(api: ApiHarness, store: str) -> list[str]:
    """Ids of every job status recorded for `store` (to prove nothing was enqueued)."""
    found = []
    for key in api.ctx.redis.scan_iter(match="wandstore:job:*", count=1000):
        if api.ctx.redis.hget(key, "store") in (store, store.encode()):
            found.append(key)
    return found


def merchant_client(api: ApiHarness, store: str) -> httpx.Client:
    """A merchant tool's client: a token with every scope (catalog runs, theme builds, activation)."""
    from adapters.tokens import SCOPES
    from tests.fixtures.stores import add_store

    add_store(api.ctx.redis, store)  # the API acts only for stores someone added
    return api.running.client(api.ctx.tokens.create(store, "merchant tool", SCOPES).token)


@pytest.fixture
def store_client(api: ApiHarness) -> httpx.Client:
    api.token_for(STORE)
    return api.client(STORE)


# --- the round trip ---------------------------------------------------------------------


def test_product_copy_round_trip_post_poll_output(api: ApiHarness, store_client: httpx.Client) -> None:
    # Given a real Shopify product
    product = sample_products(STORE)[7]
    # When it is POSTed as a product_copy generation and polled until done
    response = store_client.post(f"/v1/stores/{STORE}/generations", json=copy_request(product))
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status_url"].endswith(f"/v1/generations/{accepted['id']}")
    status = poll(store_client, accepted["status_url"])
    # Then it is done, with its output, cost and how it was served
    assert status["status"] == "done", status
    key = f"stores/{STORE}/products/{product['id']}/copy.json"
    assert status["output_keys"] == [key]
    assert status["served"] in ("fresh", "gateway_cache", "result_cache")
    assert status["cost_usd"] is not None and status["error"] is None
    assert status["attempts"] == 1 and status["finished_at"].endswith("Z")
    # And the published JSON is readable through the API by a client without object-store access
    output = store_client.get(status["output_urls"][0])
    assert output.status_code == 200 and output.headers["content-type"].startswith("application/json")
    doc = output.json()
    assert doc["meta"]["job_id"] == accepted["id"] and 3 <= len(doc["bullets"]) <= 6
    # And a conditional GET with its ETag is answered 304
    again = store_client.get(status["output_urls"][0], headers={"If-None-Match": output.headers["etag"]})
    assert again.status_code == 304


def test_failed_generation_says_what_to_do(api: ApiHarness, store_client: httpx.Client) -> None:
    # Given the model answers schema-invalid output twice (no repair can save it)
    from tests.fixtures.gateway import start_session_gateway

    gateway = start_session_gateway()
    gateway.faults([{"kind": "invalid_output", "times": 2}])
    product = {**sample_products(STORE)[8], "title": "A mug for failing twice"}
    try:
        # When the generation runs
        accepted = store_client.post(
            f"/v1/stores/{STORE}/generations", json=copy_request(product, options={"force_fresh": True})
        ).json()
        status = poll(store_client, accepted["status_url"])
    finally:
        gateway.clear_faults()
    # Then the status is failed with the reason and an action a person can take
    assert status["status"] == "failed", status
    assert status["error"]["type"] == "InvalidOutput"
    assert "invalid output after one repair" in status["error"]["message"]
    assert "force_fresh" in status["error"]["what_to_do"]


def test_idempotency_key_returns_the_first_answer(api: ApiHarness, store_client: httpx.Client) -> None:
    # Given a generation POSTed with an Idempotency-Key
    body = copy_request(sample_products(STORE)[9])
    headers = {"Idempotency-Key": "order-7781-copy"}
    first = store_client.post(f"/v1/stores/{STORE}/generations", json=body, headers=headers)
    # When the client retries the same POST with the same key
    second = store_client.post(f"/v1/stores/{STORE}/generations", json=body, headers=headers)
    # Then it gets the first answer back, not a second job
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    # And the same key with a different body is refused, naming the header
    other = copy_request(sample_products(STORE)[10])
    reused = store_client.post(f"/v1/stores/{STORE}/generations", json=other, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["error"]["details"][0]["field"] == "Idempotency-Key"


# --- auth ------------------------------------------------------------------------------


def test_missing_wrong_and_revoked_tokens_get_401(api: ApiHarness) -> None:
    url = f"/v1/stores/{STORE}/generations"
    body = copy_request(sample_products(STORE)[0])
    created = api.ctx.tokens.create(STORE, "to revoke")
    with httpx.Client(base_url=api.url) as anon:
        # Given no token, a made-up one, and a real one with its secret altered
        missing = anon.post(url, json=body)
        wrong = anon.post(
            url, json=body, headers={"Authorization": "Bearer wst_0123456789abcdef_" + "x" * 43}
        )
        altered = created.token[:-1] + ("A" if created.token[-1] != "A" else "B")
        tampered = anon.post(url, json=body, headers={"Authorization": f"Bearer {altered}"})
        # And a real token that was revoked
        ok = anon.get("/v1/generations/00000000-0000-4000-8000-000000000000", headers=_auth(created.token))
        api.ctx.tokens.revoke(created.token_id)
        revoked = anon.get(
            "/v1/generations/00000000-0000-4000-8000-000000000000", headers=_auth(created.token)
        )
    # Then each is 401 with a message that says how to get a token
    for response in (missing, wrong, tampered, revoked):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert "tokens create" in response.json()["error"]["message"]
    assert ok.status_code == 404  # the token worked before it was revoked


def test_a_store_token_can_do_nothing_to_another_store(api: ApiHarness, store_client: httpx.Client) -> None:
    # Given a generation and a batch of another store, made with the ops token
    ops = api.client("ops")
    theirs = ops.post(f"/v1/stores/{OTHER}/generations", json=copy_request(sample_products(OTHER)[0])).json()
    batch = ops.post(f"/v1/stores/{OTHER}/catalog-copy", json={"products": sample_products(OTHER)[:1]}).json()
    # When this store's token reaches for any of it
    attempts = [
        store_client.post(f"/v1/stores/{OTHER}/generations", json=copy_request(sample_products(OTHER)[1])),
        store_client.get(f"/v1/generations/{theirs['id']}"),
        store_client.get(f"/v1/batches/{batch['id']}"),
        store_client.get(f"/v1/stores/{OTHER}/outputs/stores/{OTHER}/products/1/copy.json"),
        store_client.post(f"/v1/stores/{OTHER}/catalog-copy", json={"products": sample_products(OTHER)[:1]}),
        # its own store in the path, another store's key
        store_client.get(f"/v1/stores/{STORE}/outputs/stores/{OTHER}/products/1/copy.json"),
    ]
    # Then every request is 403, and the ops token reaches both stores
    assert [r.status_code for r in attempts] == [403] * len(attempts), [r.text for r in attempts]
    assert ops.get(f"/v1/generations/{theirs['id']}").status_code == 200
    assert ops.get(f"/v1/batches/{batch['id']}").status_code == 200


def test_tokens_cli_creates_a_working_token_and_revokes_it(api: ApiHarness) -> None:
    from typer.testing import CliRunner

    from entrypoints.cli.main import app

    runner = CliRunner()
    # Given a token made with `tokens create --json`
    created = runner.invoke(app, ["tokens", "create", "kiids-kingdom", "--label", "cli test", "--json"])
    assert created.exit_code == 0, created.output
    import json

    info = json.loads(created.stdout)
    assert info["webhook_secret"].startswith("whsec_")
    url = "/v1/stores/kiids-kingdom/outputs/stores/kiids-kingdom/none.json"
    with httpx.Client(base_url=api.url, headers=_auth(info["token"])) as client:
        assert client.get(url).status_code == 404  # authenticated: the key simply is not there
        # When it is listed (never shown) and revoked with `tokens revoke`
        listed = runner.invoke(app, ["tokens", "list", "kiids-kingdom", "--json"])
        assert info["token_id"] in listed.output and info["token"] not in listed.output
        revoked = runner.invoke(app, ["tokens", "revoke", info["token_id"]])
        assert revoked.exit_code == 0, revoked.output
        # Then the next request with it gets 401
        assert client.get(url).status_code == 401
    # And Redis holds its hash, never the token
    for key in api.ctx.redis.scan_iter(match="wandstore:api:*"):
        if api.ctx.redis.type(key) == b"hash":
            assert info["token"].split("_")[-1].encode() not in b"".join(api.ctx.redis.hvals(key))


def test_tokens_never_reach_the_logs(api: ApiHarness, store_client: httpx.Client) -> None:
    import logging

    import structlog
    from structlog.testing import capture_logs

    token = api.token_for(STORE)
    wrong = token[:-4] + "zzzz"
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    # When requests with a good and a wrong token are served (and logged at every level)
    try:
        with capture_logs() as logs:
            store_client.get(f"/v1/stores/{STORE}/outputs/stores/{STORE}/missing.json")
            httpx.get(f"{api.url}/v1/generations/{'0' * 8}-0000-4000-8000-{'0' * 12}", headers=_auth(wrong))
            store_client.post(f"/v1/stores/{STORE}/generations", json={"pipeline": "nope", "input": {}})
    finally:
        structlog.configure(**saved)
    # Then the request lines carry the token's public id at most, never the token or its secret
    assert any(e["event"] == "api_request" for e in logs)
    text = repr(logs)
    for secret in (token, token.split("_")[-1], wrong, wrong.split("_")[-1], OPS_TOKEN):
        assert secret not in text


# --- hard edges ------------------------------------------------------------------------


def test_body_over_the_limit_is_413_by_header_and_by_stream(
    api: ApiHarness, store_client: httpx.Client
) -> None:
    big = {"pipeline": "product_copy", "input": {"product": {"id": 1, "title": "x" * (BODY_LIMIT + 10)}}}
    # When a body over the limit is sent with a Content-Length
    declared = store_client.post(f"/v1/stores/{STORE}/generations", json=big)

    # And another one chunked, with no Content-Length to trust
    def chunks() -> Any:
        for _ in range(BODY_LIMIT // 8192 + 2):
            yield b" " * 8192

    streamed = store_client.post(f"/v1/stores/{STORE}/generations", content=chunks())
    # Then both are 413, saying what to do instead
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert "export_key" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"pipeline": "poetry", "input": {}}, "pipeline", "literal_error"),
        ({"input": {}}, "pipeline", "missing"),
        (
            {"pipeline": "product_copy", "input": {"product": {"id": 1}}, "colour": 1},
            "colour",
            "extra_forbidden",
        ),
        (
            {"pipeline": "product_copy", "input": {"product": {"id": 1}}, "callback_url": "ftp://x"},
            "callback_url",
            "url_scheme",
        ),
        ({"pipeline": "product_copy", "input": {}}, "input.product", "missing"),
        (
            {"pipeline": "product_copy", "input": {"product": {"id": "../etc", "title": "x"}}},
            "input.product.id",
            None,
        ),
        ({"pipeline": "product_copy", "input": {"product": "a mug"}}, "input.product", None),
        (
            {
                "pipeline": "product_copy",
                "input": {"product": {"id": 1, "title": "x"}},
                "options": {"lang": 1},
            },
            "options",
            None,
        ),
    ],
)
def test_invalid_requests_are_422_naming_field_and_rule_and_enqueue_nothing(
    api: ApiHarness, body: dict[str, Any], field: str, rule: str | None
) -> None:
    store = "refused-store"
    api.token_for(store)
    with api.client(store) as client:
        # When an invalid generation request is POSTed
        response = client.post(f"/v1/stores/{store}/generations", json=body)
    # Then it is 422, naming the field and the rule, and nothing was enqueued
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["field"] == field, error
    if rule:
        assert error["details"][0]["rule"] == rule, error
    assert field in error["message"]
    assert jobs_of_store(api, store) == []


def test_malformed_ids_and_slugs_are_refused(api: ApiHarness) -> None:
    ops = api.client("ops")
    # When ids and slugs that could never be valid are used
    bad_job = ops.get("/v1/generations/not-a-uuid")
    bad_batch = ops.get("/v1/batches/..%2F..%2Fetc")
    bad_store = ops.post("/v1/stores/Bad_Store/generations", json=copy_request({"id": 1, "title": "x"}))
    bad_key = ops.get(f"/v1/stores/{STORE}/outputs/stores/{STORE}/a//b.json")
    # Then each is 422 (or 404 for a path no route matches), naming what is wrong
    assert bad_job.status_code == 422 and bad_job.json()["error"]["details"][0]["field"] == "id"
    assert bad_batch.status_code in (404, 422)
    assert bad_store.status_code == 422 and "store" in bad_store.json()["error"]["message"]
    assert bad_key.status_code == 422 and "empty path segment" in bad_key.json()["error"]["message"]
    assert jobs_of_store(api, "Bad_Store") == []


def test_a_pipeline_not_deployed_is_refused_with_501(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from entrypoints.api import submitters

    # Given a build without the personalization pipeline
    monkeypatch.delitem(submitters.SUBMITTERS, "personalization")
    store = "undeployed-store"
    add_store(api.ctx.redis, store)
    # When it is asked for
    response = api.client("ops").post(
        f"/v1/stores/{store}/generations", json={"pipeline": "personalization", "input": {"shopper_id": "s1"}}
    )
    # Then it is refused, saying so, and nothing was enqueued
    assert response.status_code == 501
    assert "not deployed" in response.json()["error"]["message"]
    assert jobs_of_store(api, store) == []


def test_rate_limit_is_per_store_and_says_when_to_retry(api: ApiHarness) -> None:
    from adapters.settings import load_settings
    from entrypoints import compose
    from entrypoints.api import create_app

    # Given an API allowing 3 requests per store per minute
    settings = load_settings(ops_api_token=OPS_TOKEN, api_rate_limit=3, api_rate_window_s=60)
    ctx = compose.api_context(settings, store=api.ctx.store)
    stores = ("rate-a", "rate-b")
    add_sample_stores(ctx.redis, *stores)
    tokens = {s: ctx.tokens.create(s).token for s in stores}
    with serve_app(create_app(ctx)) as running:
        url = "/v1/stores/{s}/outputs/stores/{s}/x.json"
        with running.client(tokens["rate-a"]) as a, running.client(tokens["rate-b"]) as b:
            # When store a makes 4 requests in the window
            codes = [a.get(url.format(s="rate-a")).status_code for _ in range(4)]
            limited = a.get(url.format(s="rate-a"))
            # Then the 4th and later are 429 with Retry-After, and store b is unaffected
            other = b.get(url.format(s="rate-b"))
    assert codes == [404, 404, 404, 429]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert "retry after" in limited.json()["error"]["message"]
    assert other.status_code == 404


# --- costs -----------------------------------------------------------------------------


def test_costs_report_is_the_cli_report(api: ApiHarness, store_client: httpx.Client) -> None:
    from adapters.costs import cost_report
    from adapters.ledger import Ledger

    # Given a generation that ran fresh (it is in the ledger)
    product = {**sample_products(STORE)[15], "title": "Costed tumbler"}
    body = copy_request(product, options={"force_fresh": True})
    accepted = store_client.post(f"/v1/stores/{STORE}/generations", json=body).json()
    assert poll(store_client, accepted["status_url"])["status"] == "done"
    # When the store's costs are asked for by pipeline and model
    response = store_client.get(f"/v1/stores/{STORE}/costs", params={"by": "pipeline,model"})
    # Then they are the same report the CLI prints
    assert response.status_code == 200, response.text
    report = response.json()
    expected = cost_report(Ledger(api.ctx.redis), store=STORE, by=("pipeline", "model"))
    assert report["rows"] == expected["rows"] and report["totals"] == expected["totals"]
    row = next(r for r in report["rows"] if r["pipeline"] == "product_copy")
    assert row["calls"] >= 1 and float(row["cost_usd"]) > 0
    # And bad parameters are 422 naming the parameter
    bad_by = store_client.get(f"/v1/stores/{STORE}/costs", params={"by": "colour"})
    bad_day = store_client.get(f"/v1/stores/{STORE}/costs", params={"since": "yesterday"})
    reversed_ = store_client.get(
        f"/v1/stores/{STORE}/costs", params={"since": "2026-11-25", "until": "2026-11-01"}
    )
    assert [r.status_code for r in (bad_by, bad_day, reversed_)] == [422, 422, 422]
    assert bad_by.json()["error"]["details"][0]["field"] == "by"
    assert bad_day.json()["error"]["details"][0]["field"] == "since"


# --- operations ------------------------------------------------------------------------


def test_healthz_says_up_to_anyone_and_details_to_ops(api: ApiHarness) -> None:
    # When /healthz is asked without a token, with a store's token and with the ops token
    anonymous = httpx.get(f"{api.url}/healthz")
    store = httpx.get(f"{api.url}/healthz", headers=_auth(api.token_for(STORE)))
    ops = httpx.get(f"{api.url}/healthz", headers=_auth(OPS_TOKEN))
    # Then anyone learns only that it is up
    assert anonymous.status_code == store.status_code == 200
    assert anonymous.json() == store.json() == {"status": "up"}
    # And ops see every check, with the reason, when it ran and what it took
    body = ops.json()
    assert ops.status_code == 200 and body["status"] == "up" and body["ok"] is True
    assert set(body["checks"]) == {"redis", "object_store", "gateway"}
    assert all(c["ok"] for c in body["checks"].values())
    assert "reachable" in body["checks"]["gateway"]["detail"]
    assert body["checked_at"].endswith("Z")


def test_healthz_is_503_naming_what_is_down(api: ApiHarness) -> None:
    # Given an API whose gateway address answers nothing
    from adapters.settings import load_settings
    from entrypoints import compose
    from entrypoints.api import create_app
    from tests.fixtures.redis import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1/x/y"
    settings = load_settings(ops_api_token=OPS_TOKEN, ai_gateway_url=dead)
    with serve_app(create_app(compose.api_context(settings, store=api.ctx.store))) as running:
        public = httpx.get(f"{running.url}/healthz")
        ops = httpx.get(f"{running.url}/healthz", headers=_auth(OPS_TOKEN))
    # Then /healthz is 503 to anyone, without saying where anything lives
    assert public.status_code == 503 and public.json() == {"status": "down"}
    assert "127.0.0.1" not in public.text
    # And ops learn the gateway is the problem
    assert ops.status_code == 503
    checks = ops.json()["checks"]
    assert checks["redis"]["ok"] and checks["object_store"]["ok"] and not checks["gateway"]["ok"]


def test_metrics_count_requests_by_route_and_show_queue_depth(
    api: ApiHarness, store_client: httpx.Client
) -> None:
    # Given a 404 and an enqueued generation
    store_client.get(f"/v1/stores/{STORE}/outputs/stores/{STORE}/nothing.json")
    store_client.post(f"/v1/stores/{STORE}/generations", json=copy_request(sample_products(STORE)[18]))
    # When the metrics are scraped
    text = httpx.get(f"{api.url}/metrics").text
    # Then requests are counted by route template, and the queues and generations show
    assert (
        'wandstore_api_requests_total{method="GET",route="/v1/stores/{store}/outputs/{key:path}",status="404"}'
        in text
    )
    assert 'wandstore_queue_messages{queue="batch"}' in text
    assert 'wandstore_api_generations_total{pipeline="product_copy"}' in text


def test_openapi_document_is_valid_and_declares_bearer_auth(api: ApiHarness) -> None:
    from openapi_spec_validator import validate

    doc = httpx.get(f"{api.url}/openapi.json").json()
    validate(doc)
    assert "/v1/stores/{store}/generations" in doc["paths"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert httpx.get(f"{api.url}/docs").status_code == 200


def test_the_web_process_never_imports_litellm(api: ApiHarness) -> None:
    import os
    import subprocess
    import sys

    # When a fresh process builds the app and imports everything its routes use
    code = (
        "import sys\n"
        "from entrypoints.api.app import create_app\n"
        "app = create_app(); app.openapi()\n"
        "import pipelines.batches, pipelines.submit, pipelines.theme_build, pipelines.theme_publish\n"
        "print('litellm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    # Then litellm (seconds and ~200 MB) was never imported
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
