"""`wandstore-agents stores`: the stores this service knows, their Shopify shop and Admin API token."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import typer

from domain.keys import check_store
from entrypoints.cli.known import known_store, registry
from entrypoints.cli.output import console, fail, print_json, print_result, print_table

stores_app = typer.Typer(
    help="Stores: add one before anything else names it; its shop, currency, locale and voice.",
    no_args_is_help=True,
)
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
KNOWN = typer.Argument(..., help="Store slug.", callback=known_store)


def _slug(value: str) -> str:
    check_store(value)
    return value


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


def describe(record: Any, token_set_at: float | None) -> dict[str, Any]:
    """A record as `stores show` prints it: never the token, only whether one is set."""
    out = record.public()
    out["created_at"], out["updated_at"] = _iso(record.created_at), _iso(record.updated_at)
    out["shopify_token_set"] = token_set_at is not None
    out["shopify_token_set_at"] = _iso(token_set_at)
    return out


@stores_app.command("add")
def add(
    store: str = typer.Argument(..., help="Store slug, e.g. stanley1913.", callback=_slug),
    shop_domain: str | None = typer.Option(None, "--shop-domain", help="e.g. stanley1913.myshopify.com"),
    currency: str | None = typer.Option(None, "--currency", help="ISO 4217 code of its prices, e.g. GBP."),
    name: str | None = typer.Option(None, "--name", help="Display name (default: from the slug)."),
    locale: str | None = typer.Option(None, "--locale", help="Default locale of its copy (default en)."),
    brand_voice: str | None = typer.Option(None, "--brand-voice", help="How its copy should sound."),
    publish_copy: str | None = typer.Option(
        None, "--publish-copy", help="auto (live when its checks pass; the default) or review."
    ),
    publish_theme: str | None = typer.Option(
        None, "--publish-theme", help="review (the default) or auto (checks pass and the critic approved)."
    ),
    shopify_push: bool | None = typer.Option(
        None, "--shopify-push/--no-shopify-push", help="Push approved copy to the product in Shopify."
    ),
    as_json: bool = AS_JSON,
) -> None:
    """Add STORE (--shop-domain and --currency required), or change the fields given of one added."""
    from adapters.errors import InvalidInput

    publish = None
    if publish_copy or publish_theme:
        before = registry().get(store)
        publish = before.publish.as_dict() if before else {"copy": "auto", "theme": "review"}
        publish.update({k: v for k, v in (("copy", publish_copy), ("theme", publish_theme)) if v})
    changes = {
        "shop_domain": shop_domain,
        "currency": currency,
        "name": name,
        "locale": locale,
        "brand_voice": brand_voice,
        "publish": publish,
        "shopify_push": shopify_push,
    }
    try:
        record, created = registry().update(store, **changes)
    except InvalidInput as exc:
        fail(f"{exc} (for a new store, --shop-domain and --currency are required)")
        return
    if as_json:
        print_json({**record.public(), "created": created})
        return
    verb = "added" if created else "updated"
    console.print(
        f"{verb} {store}: {record.shop_domain}, {record.currency}, locale {record.locale}. "
        f"Next: `wandstore-agents catalog upload {store} FILE` or `stores shopify-token {store}` then "
        f"`catalog sync {store}`",
        highlight=False,
    )


@stores_app.command("list")
def list_stores(as_json: bool = AS_JSON) -> None:
    """Every store added, by slug."""
    rows = [r.public() for r in registry().list()]
    if as_json:
        print_json({"stores": rows})
        return
    print_table(rows, ["store", "name", "shop_domain", "currency", "locale"], title="stores")


@stores_app.command("show")
def show(store: str = KNOWN, as_json: bool = AS_JSON) -> None:
    """A store's fields, and whether its Admin API token is set (never the token)."""
    stores = registry()
    info = describe(stores.require(store), stores.admin_token_set_at(store))
    if as_json:
        print_json(info)
        return
    rows = [{"field": k, "value": v} for k, v in info.items()]
    print_table(rows, ["field", "value"], title=f"store {store}")


@stores_app.command("remove")
def remove(
    store: str = KNOWN,
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
    as_json: bool = AS_JSON,
) -> None:
    """Forget STORE, its shop domain and Admin API token (its outputs and API tokens stay)."""
    if not yes and not typer.confirm(f"forget store {store}?", err=True):
        raise typer.Exit(1)
    registry().remove(store)
    print_result(
        as_json,
        {"store": store, "removed": True},
        f"removed {store}; revoke its API tokens with `wandstore-agents tokens list {store}` and "
        "`tokens revoke ID` if they should stop working",
    )


@stores_app.command("shopify-token")
def shopify_token(store: str = KNOWN, as_json: bool = AS_JSON) -> None:
    """Set STORE's Shopify Admin API token, read from stdin; kept encrypted, never shown again."""
    from adapters.secretbox import open_box
    from adapters.settings import get_settings

    if sys.stdin.isatty():
        import getpass

        token = getpass.getpass(f"Admin API token of {store} (input hidden): ")
    else:
        token = sys.stdin.readline()
    token = token.strip()
    if not token or len(token) > 256 or any(c.isspace() for c in token):
        fail("expected one Admin API token (e.g. shpat_...) on stdin")
    registry().set_admin_token(store, open_box(get_settings()).seal(token))
    print_result(
        as_json,
        {"store": store, "admin_token_set": True},
        f"Admin API token of {store} set (stored encrypted); `wandstore-agents catalog sync {store}`",
    )
