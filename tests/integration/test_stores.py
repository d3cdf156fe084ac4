"""Stores are known: added by ops over HTTP or the CLI; every other command refuses a store nobody added."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from tests.fixtures.api import ApiHarness
from tests.helpers import wait_job

HINT = "stores add"
NEW = {"name": "Acme Outdoor", "shop_domain": "acme-outdoor.myshopify.com", "currency": "eur", "locale": "de"}


def cli(*args: str, input: str | None = None) -> Any:
    from entrypoints.cli.main import app

    return CliRunner().invoke(app, list(args), input=input)


def test_ops_adds_a_store_and_its_own_token_reads_it(api: ApiHarness) -> None:
    ops = api.client("ops")
    from adapters.stores import StoreRegistry

    StoreRegistry(api.ctx.redis).remove("acme-outdoor")
    # When ops PUTs a new store
    created = ops.put("/v1/stores/acme-outdoor", json={**NEW, "brand_voice": "plain, warm"})
    # Then it is added (201), with the fields normalized and the next issue's defaults
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["currency"] == "EUR" and body["shop_domain"] == "acme-outdoor.myshopify.com"
    assert body["publish"] == {"copy": "auto", "theme": "review"} and body["shopify_push"] is False
    assert body["shopify_token_set"] is False
    # And the store's own token reads the same fields
    with api.running.client(api.token_for("acme-outdoor")) as own:
        assert own.get("/v1/stores/acme-outdoor").json() == body
        # But may not change them: only ops adds or changes stores
        refused = own.put("/v1/stores/acme-outdoor", json=NEW)
        assert refused.status_code == 403 and "OPS_API_TOKEN" in refused.json()["error"]["message"]
    # And a second PUT replaces the fields (200)
    again = ops.put("/v1/stores/acme-outdoor", json={**NEW, "locale": "de-AT"})
    assert again.status_code == 200 and again.json()["locale"] == "de-AT"


def test_invalid_fields_and_a_shop_domain_taken_are_422_naming_the_field(api: ApiHarness) -> None:
    ops = api.client("ops")
    bad = ops.put("/v1/stores/acme-bad", json={**NEW, "shop_domain": "acme.example.com", "currency": "euro"})
    assert bad.status_code == 422
    fields = {d["field"] for d in bad.json()["error"]["details"]}
    assert fields == {"shop_domain", "currency"}
    # A shop domain belongs to one store: webhooks find their store by it
    taken = ops.put("/v1/stores/acme-copy", json={**NEW, "shop_domain": "stanley1913.myshopify.com"})
    assert taken.status_code == 422 and "stanley1913" in taken.json()["error"]["message"]


def test_every_route_refuses_an_unknown_store_naming_stores_add(api: ApiHarness) -> None:
    ops = api.client("ops")
    # Given a slug nobody added (a typo of a real one)
    typo = "stanley1193"
    attempts = [
        ops.get(f"/v1/stores/{typo}"),
        ops.get(f"/v1/stores/{typo}/costs"),
        ops.get(f"/v1/stores/{typo}/themes"),
        ops.get(f"/v1/stores/{typo}/catalog"),
        ops.post(f"/v1/stores/{typo}/catalog/sync"),
        ops.put(f"/v1/stores/{typo}/shopify", json={"admin_token": "shpat_0123456789"}),
        ops.post(
            f"/v1/stores/{typo}/generations",
            json={"pipeline": "personalization", "input": {"shopper_id": "s1", "context": {}}},
        ),
    ]
    # Then every one is a 404 that says how to add it, and nothing was enqueued
    assert [r.status_code for r in attempts] == [404] * len(attempts), [r.text for r in attempts]
    for response in attempts:
        error = response.json()["error"]
        assert error["code"] == "unknown_store" and HINT in error["message"]


def test_the_cli_refuses_an_unknown_store_and_tokens_create_names_stores_add(sample_stores: Any) -> None:
    # Given no store 'typo-store'
    for args in (
        ("tokens", "create", "typo-store"),
        ("budget", "show", "typo-store"),
        ("costs", "--store", "typo-store"),
        ("catalog", "show", "typo-store"),
        ("stores", "show", "typo-store"),
        ("themes", "list", "typo-store"),
    ):
        # When a command names it, Then it exits non-zero saying how to add it
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert HINT in result.stderr and "typo-store" in result.stderr, (args, result.stderr)
    # And once added, tokens create works
    added = cli(
        "stores", "add", "typo-store", "--shop-domain", "typo-store.myshopify.com", "--currency", "usd"
    )
    assert added.exit_code == 0, added.output
    created = cli("tokens", "create", "typo-store", "--json")
    assert created.exit_code == 0 and json.loads(created.stdout)["store"] == "typo-store"


def test_stores_cli_adds_lists_shows_changes_and_removes(sample_stores: Any) -> None:
    # A new store needs its shop and currency
    missing = cli("stores", "add", "cli-store")
    assert missing.exit_code == 2 and "shop_domain" in missing.stderr
    assert (
        cli(
            "stores", "add", "cli-store", "--shop-domain", "cli-store.myshopify.com", "--currency", "GBP"
        ).exit_code
        == 0
    )
    # Changing one field keeps the others
    assert cli("stores", "add", "cli-store", "--brand-voice", "dry wit").exit_code == 0
    shown = json.loads(cli("stores", "show", "cli-store", "--json").stdout)
    assert (
        shown["brand_voice"] == "dry wit"
        and shown["currency"] == "GBP"
        and shown["shopify_token_set"] is False
    )
    listed = json.loads(cli("stores", "list", "--json").stdout)["stores"]
    assert {s["store"] for s in listed} == {"cli-store", *sample_stores}
    assert cli("stores", "remove", "cli-store", "--yes").exit_code == 0
    assert cli("stores", "show", "cli-store").exit_code == 2


def test_the_admin_token_is_kept_sealed_and_never_shown(api: ApiHarness, redis_client: Any) -> None:
    from tests.fixtures.stores import add_sample_stores

    add_sample_stores(api.ctx.redis)
    secret = "shpat_never-shown-7f3a9c21"
    # When ops sets it over HTTP, and again from the CLI's stdin
    ops = api.client("ops")
    answer = ops.put("/v1/stores/stanley1913/shopify", json={"admin_token": secret})
    assert answer.status_code == 200 and secret not in answer.text
    from_stdin = cli("stores", "shopify-token", "stanley1913", input=secret + "\n")
    assert from_stdin.exit_code == 0 and secret not in from_stdin.output
    # Then Redis holds it encrypted, the store says only that it is set
    raw = b"".join(api.ctx.redis.hvals("wandstore:store-secret:stanley1913"))
    assert secret.encode() not in raw and raw
    shown = ops.get("/v1/stores/stanley1913").json()
    assert shown["shopify_token_set"] is True and secret not in json.dumps(shown)
    assert secret not in cli("stores", "show", "stanley1913", "--json").stdout
    # And a store token may not set it
    with api.running.client(api.token_for("stanley1913")) as own:
        assert own.put("/v1/stores/stanley1913/shopify", json={"admin_token": secret}).status_code == 403


def test_actors_still_take_any_valid_slug_from_a_plain_dramatiq_client(worker: Any, services: Any) -> None:
    from dramatiq import Message

    from entrypoints import compose
    from tests.conftest import sample_products

    # Given a store nobody added, and a plain Dramatiq message naming it
    product = sample_products("electricshop")[0]
    message: Message[Any] = Message(
        queue_name="batch",
        actor_name="product_copy",
        args=("never-added", product, {}),
        kwargs={},
        options={},
    )
    compose.process_broker().enqueue(message)
    # Then the actor runs it as before
    assert wait_job(services.status, message.message_id)["status"] == "done"


def test_backups_carry_stores_and_sealed_admin_tokens(sample_stores: Any, redis_client: Any) -> None:
    from adapters import backup
    from adapters.stores import StoreRegistry

    StoreRegistry(redis_client).set_admin_token("stanley1913", "gAAAA-sealed")
    summary = backup.summarize(backup.export(redis_client))
    assert summary["stores"] == len(sample_stores) + 2  # a record each, the index, the domains
    assert summary["shopify admin tokens"] == 1
