"""`wandstore-agents catalog`: a store's products in (an export uploaded, or synced from Shopify) and back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from entrypoints.cli.known import known_store, registry
from entrypoints.cli.output import console, fail, print_json, print_table

catalog_app = typer.Typer(
    help="A store's catalog: upload a products export, sync it from Shopify, show what it holds.",
    no_args_is_help=True,
)
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of tables.")
KNOWN = typer.Argument(..., help="Store slug.", callback=known_store)
COUNTS = ("live", "draft", "archived", "unpublished", "unavailable", "skipped", "total")


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    counts = summary.get("counts") or {}
    head = {
        "store": summary.get("store"),
        "source": summary.get("source"),
        "currency": summary.get("currency"),
        "updated_at": summary.get("updated_at"),
        **{name: counts.get(name, 0) for name in COUNTS},
    }
    if summary.get("sync"):
        sync = summary["sync"]
        head["last sync"] = (
            f"job {sync.get('job_id')}: {sync.get('pages')} pages, {sync.get('requests')} requests, "
            f"{sync.get('throttled')} throttled, {sync.get('seconds')}s"
        )
    rows = [{"field": k, "value": v} for k, v in head.items()]
    print_table(rows, ["field", "value"], title=f"catalog of {summary.get('store')}")
    skipped = summary.get("skipped") or []
    if skipped:
        print_table(skipped, ["id", "title", "reason"], title="skipped products")


@catalog_app.command("upload")
def upload(
    store: str = KNOWN,
    file: Path = typer.Argument(..., help="A storefront products.json or an Admin REST export."),
    as_json: bool = AS_JSON,
) -> None:
    """Replace STORE's catalog snapshot with FILE's products (read one at a time, any size up to the cap)."""
    from adapters.settings import get_settings
    from adapters.store import open_store
    from pipelines.catalog_snapshot import write_export

    settings = get_settings()
    record = registry().require(store)
    try:
        size = file.stat().st_size
    except FileNotFoundError:
        fail(f"{file}: no such file")
        return
    if size > settings.catalog_export_max_bytes:
        fail(
            f"{file} is {size} bytes, more than CATALOG_EXPORT_MAX_BYTES "
            f"({settings.catalog_export_max_bytes})"
        )
    with file.open("rb") as stream:
        summary = write_export(open_store(settings), store, stream, currency=record.currency)
    print_summary(summary, as_json)


@catalog_app.command("show")
def show(store: str = KNOWN, as_json: bool = AS_JSON) -> None:
    """What STORE's catalog holds: live, draft, skipped (with reasons), its source and age."""
    from adapters.settings import get_settings
    from adapters.store import open_store
    from pipelines.catalog_snapshot import read_summary

    summary = read_summary(open_store(get_settings()), store)
    if summary is None:
        fail(
            f"store {store!r} has no catalog yet: `wandstore-agents catalog upload {store} FILE` "
            f"or `catalog sync {store}`"
        )
        return
    print_summary(summary, as_json)


@catalog_app.command("sync")
def sync(
    store: str = KNOWN,
    wait: bool = typer.Option(False, "--wait", help="Follow the job's progress until it ends."),
    as_json: bool = AS_JSON,
) -> None:
    """Queue a catalog_sync job: STORE's whole catalog from its Shopify Admin API (one at a time)."""
    from adapters.settings import get_settings
    from entrypoints import compose
    from pipelines.catalog_sync import submit_sync
    from pipelines.status import JobStatus

    broker = compose.process_broker()
    client = compose.redis_client(get_settings())
    status = JobStatus(client)
    job_id, new = submit_sync(broker, status, client, store)
    if not wait:
        if as_json:
            print_json({"id": job_id, "queued": new})
        else:
            state = "queued" if new else "already queued or running"
            console.print(
                f"catalog sync of {store} {state}: job {job_id}; `wandstore-agents status {job_id}`"
            )
        return
    info: dict[str, Any] = {}
    with console.status(f"catalog sync {job_id}") as spinner:
        while info.get("status") not in ("done", "failed"):
            time.sleep(0.2)
            info = status.get(job_id) or {}
            spinner.update(f"catalog sync {job_id}: {info.get('progress', 'queued')}")
    if as_json:
        print_json(info)
    else:
        console.print(f"catalog sync {job_id}: {info.get('status')}, {info.get('progress')}", highlight=False)
    if info.get("status") != "done":
        raise typer.Exit(1)
