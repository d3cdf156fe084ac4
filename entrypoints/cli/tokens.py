"""`wandstore-agents tokens`: per-store API tokens and webhook signing secrets."""

from __future__ import annotations

from typing import Any

import typer

from domain.keys import check_store
from entrypoints.cli.known import known_store
from entrypoints.cli.output import console, print_json, print_result, print_table

tokens_app = typer.Typer(
    help="Per-store API tokens (stored hashed) and webhook signing secrets.", no_args_is_help=True
)
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")
SCOPE_HELP = (
    "What the token may do; repeat for more: read (statuses, outputs, themes, costs), generate "
    "(ask for generations), publish (theme builds, activating a theme), catalog (replace the "
    "catalog snapshot, catalog-copy batches)."
)


def _slug(value: str) -> str:
    check_store(value)  # the token store keys by slug; the rule is checked here, at the edge
    known_store(value)  # and only for a store someone added (`stores add`)
    return value


def _redis() -> Any:
    from adapters.settings import get_settings
    from entrypoints.compose import redis_client

    return redis_client(get_settings())


@tokens_app.command("create")
def create(
    store: str = typer.Argument(..., help="Store slug, e.g. stanley1913.", callback=_slug),
    label: str = typer.Option("", help="A note to tell tokens apart, e.g. 'storefront worker'."),
    scope: list[str] = typer.Option(["read", "generate"], "--scope", help=SCOPE_HELP),
    as_json: bool = AS_JSON,
) -> None:
    """Create a token for STORE (scopes read,generate unless --scope says otherwise); printed once."""
    from adapters.signing import WebhookSecrets
    from adapters.tokens import TokenStore

    client = _redis()
    created = TokenStore(client).create(store, label, _scopes(scope))
    secret = WebhookSecrets(client).get_or_create(store)
    if as_json:
        print_json(
            {
                "store": store,
                "token_id": created.token_id,
                "token": created.token,
                "scopes": list(created.scopes),
                "webhook_secret": secret,
            }
        )
        return
    console.print(
        f"token for {store}, scopes {','.join(created.scopes)} (shown once; only its hash is kept):",
        highlight=False,
    )
    console.print(created.token, highlight=False, soft_wrap=True)
    console.print(
        f"token id: {created.token_id}   (revoke with `wandstore-agents tokens revoke {created.token_id}`)"
    )
    console.print(f"webhook signing secret for {store}: {secret}", highlight=False, soft_wrap=True)


@tokens_app.command("revoke")
def revoke(
    token: str = typer.Argument(..., help="A token id (from `tokens list`) or the token itself."),
    as_json: bool = AS_JSON,
) -> None:
    """Revoke a token at once: the next request that presents it gets 401."""
    from adapters.tokens import TokenStore

    store = TokenStore(_redis()).revoke(token)
    print_result(as_json, {"revoked": True, "store": store}, f"revoked token of {store}")


@tokens_app.command("list")
def list_tokens(
    store: str = typer.Argument(..., help="Store slug.", callback=_slug), as_json: bool = AS_JSON
) -> None:
    """A store's tokens: ids, labels, creation times (never the tokens)."""
    from datetime import UTC, datetime

    from adapters.tokens import TokenStore

    rows = TokenStore(_redis()).list(store)
    for row in rows:
        row["created_at"] = datetime.fromtimestamp(row["created_at"], UTC).isoformat(timespec="seconds")
    if as_json:
        print_json({"store": store, "tokens": rows})
    else:
        for row in rows:
            row["scopes"] = ",".join(row["scopes"])
        print_table(rows, ["token_id", "label", "scopes", "created_at"], title=f"API tokens of {store}")


@tokens_app.command("scopes")
def set_scopes(
    token_id: str = typer.Argument(..., help="A token id (from `tokens list`)."),
    scope: list[str] = typer.Option(..., "--scope", help=SCOPE_HELP),
    as_json: bool = AS_JSON,
) -> None:
    """Replace a token's scopes (e.g. give a merchant tool's token publish and catalog)."""
    from adapters.tokens import TokenStore

    granted = TokenStore(_redis()).set_scopes(token_id, _scopes(scope))
    data = {"token_id": token_id, "scopes": list(granted)}
    print_result(as_json, data, f"token {token_id} now has scopes {','.join(granted)}")


def _scopes(values: list[str]) -> tuple[str, ...]:
    """`--scope read --scope generate` or `--scope read,generate`; unknown names exit with the list."""
    from adapters.errors import InvalidInput
    from adapters.tokens import check_scopes

    try:
        return check_scopes([part.strip() for value in values for part in value.split(",") if part.strip()])
    except InvalidInput as exc:
        raise typer.BadParameter(str(exc), param_hint="--scope") from None


@tokens_app.command("webhook-secret")
def webhook_secret(
    store: str = typer.Argument(..., help="Store slug.", callback=_slug),
    rotate: bool = typer.Option(
        False, "--rotate", help="Replace the secret; deliveries sign with the new one."
    ),
    as_json: bool = AS_JSON,
) -> None:
    """Print (or rotate) the secret STORE's webhooks are signed with."""
    from adapters.signing import WebhookSecrets

    secrets = WebhookSecrets(_redis())
    secret = secrets.rotate(store) if rotate else secrets.get_or_create(store)
    print_result(as_json, {"store": store, "secret": secret, "rotated": rotate}, secret)
