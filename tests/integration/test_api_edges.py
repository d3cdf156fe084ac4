"""The API's edges: token scopes, idempotency claims renewed while their work runs, the metrics'
method label, non-finite prices."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.conftest import sample_products
from tests.fixtures.api import OPS_TOKEN, ApiHarness

STORE = "kiids-kingdom"
NO_BUILD = "00000000-0000-4000-8000-000000000000"


def _client(api: ApiHarness, token: str) -> httpx.Client:
    return api.running.client(token)


def copy_request(index: int = 0, **product: Any) -> dict[str, Any]:
    return {"pipeline": "product_copy", "input": {"product": {**sample_products(STORE)[index], **product}}}


# --- scopes ------------------------------------------------------------------------------


def test_a_storefront_token_reads_and_generates_but_cannot_publish_or_touch_the_catalog(
    api: ApiHarness,
) -> None:
    # Given a token created with the default scopes (read, generate), as a storefront's is
    created = api.ctx.tokens.create(STORE, "storefront")
    assert created.scopes == ("read", "generate")
    client = _client(api, created.token)
    # When it asks for a generation and reads it back
    accepted = client.post(f"/v1/stores/{STORE}/generations", json=copy_request(1))
    status = client.get(accepted.json()["status_url"])
    # And tries to activate a theme, run a theme build, and run a catalog batch
    activate = client.post(f"/v1/stores/{STORE}/themes/{NO_BUILD}/activate")
    theme = client.post(
        f"/v1/stores/{STORE}/generations",
        json={"pipeline": "theme_build", "input": {"brief": {"description": "Bright toys for small people"}}},
    )
    batch = client.post(f"/v1/stores/{STORE}/catalog-copy", json={"products": sample_products(STORE)[:1]})
    # Then the first two work, and each of the others is 403 naming the scope it lacks
    assert (accepted.status_code, status.status_code) == (202, 200)
    for response, scope in ((activate, "publish"), (theme, "publish"), (batch, "catalog")):
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert f"lacks the {scope!r} scope" in error["message"]
        assert error["details"][0]["scope"] == scope
        assert f"tokens scopes {created.token_id} --scope read --scope generate" in error["message"]


def test_each_scope_opens_only_its_routes(api: ApiHarness) -> None:
    tokens = api.ctx.tokens
    read_only = _client(api, tokens.create(STORE, "dashboard", ["read"]).token)
    publisher = _client(api, tokens.create(STORE, "theme tool", ["read", "publish"]).token)
    # When a read-only token asks for a generation, and a publisher activates a build
    generate = read_only.post(f"/v1/stores/{STORE}/generations", json=copy_request(2))
    readable = read_only.get(f"/v1/stores/{STORE}/outputs/stores/{STORE}/none.json")
    activate = publisher.post(f"/v1/stores/{STORE}/themes/{NO_BUILD}/activate")
    # Then the read-only token may read but not generate; the publisher gets past the scope check
    assert generate.status_code == 403 and "'generate' scope" in generate.json()["error"]["message"]
    assert readable.status_code == 404
    assert activate.status_code == 404 and "not published" in activate.json()["error"]["message"]
    # And the ops token has every scope
    ops = _client(api, OPS_TOKEN).post(f"/v1/stores/{STORE}/themes/{NO_BUILD}/activate")
    assert ops.status_code == 404


def test_a_token_from_before_scopes_gets_the_storefront_default(api: ApiHarness) -> None:
    from adapters.tokens import PREFIX

    # Given a token whose record has no scopes field (made before scopes existed)
    created = api.ctx.tokens.create(STORE, "old")
    api.ctx.redis.hdel(PREFIX + created.token_id, "scopes")
    client = _client(api, created.token)
    # Then it may read and generate, and nothing more
    assert client.post(f"/v1/stores/{STORE}/generations", json=copy_request(3)).status_code == 202
    activate = client.post(f"/v1/stores/{STORE}/themes/{NO_BUILD}/activate")
    assert activate.status_code == 403 and "'publish' scope" in activate.json()["error"]["message"]
    listed = api.ctx.tokens.list(STORE)
    assert next(t for t in listed if t["token_id"] == created.token_id)["scopes"] == ["read", "generate"]


def test_tokens_cli_sets_scopes(api: ApiHarness) -> None:
    from typer.testing import CliRunner

    from entrypoints.cli.main import app

    runner = CliRunner()
    # Given a token with the read scope only
    created = api.ctx.tokens.create(STORE, "dashboard", ["read"])
    client = _client(api, created.token)
    assert client.post(f"/v1/stores/{STORE}/generations", json=copy_request(4)).status_code == 403
    # When `tokens scopes` gives it generate too
    changed = runner.invoke(app, ["tokens", "scopes", created.token_id, "--scope", "read,generate"])
    assert changed.exit_code == 0, changed.output
    # Then its next request may generate, and `tokens list` shows its scopes
    assert client.post(f"/v1/stores/{STORE}/generations", json=copy_request(4)).status_code == 202
    listed = {t["token_id"]: t["scopes"] for t in api.ctx.tokens.list(STORE)}
    assert listed[created.token_id] == ["read", "generate"]
    # And an unknown scope is refused, naming the ones there are
    bad = runner.invoke(
        app, ["tokens", "scopes", created.token_id, "--scope", "admin"], env={"COLUMNS": "200"}
    )
    assert bad.exit_code != 0
    assert "read, generate, publish, catalog" in bad.output


# --- idempotency ---------------------------------------------------------------------------


def test_an_idempotency_claim_outlives_its_ttl_while_the_work_runs(redis_server: Any) -> None:
    from adapters.redis_conn import AsyncRedis
    from entrypoints.api.errors import ApiError
    from entrypoints.api.idempotency import Claim, Idempotency

    async def scenario() -> tuple[Any, Any, Any]:
        aredis = AsyncRedis(redis_server.url)
        # Given claims that expire 0.3 s after they were last renewed
        idem = Idempotency(aredis, pending_ttl_s=0.3)
        claim = await idem.begin("s:catalog-copy", "import-9", "digest-1")
        assert isinstance(claim, Claim)
        async with idem.renewing(claim):
            # When the work takes four times as long (a large batch being submitted)
            await asyncio.sleep(1.2)
            # Then a retry meanwhile is told the first is still running, and creates nothing
            try:
                await idem.begin("s:catalog-copy", "import-9", "digest-1")
            except ApiError as exc:
                during = exc
        await idem.finish(claim, 202, {"id": "batch-1"})
        # And a retry after the work gets the first answer
        after = await idem.begin("s:catalog-copy", "import-9", "digest-1")
        ttl = await aredis.client().ttl(claim.name)
        await aredis.client().aclose()
        return during, after, ttl

    during, after, ttl = asyncio.run(scenario())
    assert during.status == 409 and during.headers == {"Retry-After": "1"}
    assert after["response"] == {"id": "batch-1"} and ttl > 3600


# --- metrics -------------------------------------------------------------------------------


def test_the_metrics_method_label_takes_allowlisted_values_only(api: ApiHarness) -> None:
    # When requests arrive with made-up methods
    with httpx.Client(base_url=api.url) as client:
        for method in ("PURGE", "XYZZY1", "XYZZY2"):
            client.request(method, "/healthz")
        text = client.get("/metrics").text
    # Then they are counted as "other", and no label value was made from them
    assert 'method="other",route="/healthz"' in text
    assert "PURGE" not in text and "XYZZY" not in text


# --- prices --------------------------------------------------------------------------------


@pytest.mark.parametrize("price", ['"NaN"', "NaN", '"Infinity"', '"-inf"', "1e999"])
def test_a_non_finite_price_is_a_422_naming_the_field(api: ApiHarness, price: str) -> None:
    product = {"id": 77, "title": "Jigsaw", "variants": [{"id": 1, "price": "9.99"}, {"id": 2, "price": 0}]}
    raw = json.dumps(product).replace('"price": 0', f'"price": {price}')
    ops = _client(api, OPS_TOKEN)
    headers = {"Content-Type": "application/json"}
    # When a product whose second variant's price is not a finite number is sent for copy
    copy = ops.post(
        f"/v1/stores/{STORE}/generations",
        content=f'{{"pipeline": "product_copy", "input": {{"product": {raw}}}}}',
        headers=headers,
    )
    # And as a theme build's catalog
    brief = '{"description": "Bright toys for small people"}'
    theme = ops.post(
        f"/v1/stores/{STORE}/generations",
        content=f'{{"pipeline": "theme_build", "input": {{"brief": {brief}, "products": [{raw}]}}}}',
        headers=headers,
    )
    # Then both are 422 in the one error shape, naming the field
    assert copy.status_code == 422, copy.text
    assert copy.json()["error"]["details"][0]["field"] == "input.product.variants.1.price"
    assert theme.status_code == 422, theme.text
    assert theme.json()["error"]["details"][0]["field"] == "input.products"
    assert "variants.1.price" in theme.json()["error"]["message"]
