"""`run`, `enqueue` and `status`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer

from entrypoints.cli.known import known_store
from entrypoints.cli.output import console, fail, print_json, print_table

run_app = typer.Typer(
    help="Run a pipeline inline, in this process (no broker, no worker).", no_args_is_help=True
)
enqueue_app = typer.Typer(help="Enqueue pipeline jobs for the workers; prints job ids.", no_args_is_help=True)

STORE = typer.Option(..., "--store", "-s", help="Store slug, e.g. stanley1913.", callback=known_store)
INPUT = typer.Option(
    ..., "--input", "-i", help='JSON file: one product, a list, or a {"products": [...]} export.'
)
OPTIONS = typer.Option(None, "--options", help='JSON object of options, e.g. \'{"brand_voice": "..."}\'.')
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def read_json(path: Path) -> Any:
    """The JSON in `path`; exit 2 naming the file when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except json.JSONDecodeError as exc:
        fail(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})")


def read_products(path: Path) -> list[dict[str, Any]]:
    from agents.shopify import load_products

    return load_products(read_json(path))


def refuse_if_budget_spent(client: Any, store: str) -> None:
    """Exit 2 naming the budget when the store's is spent today: its jobs could only fail."""
    from adapters.ledger import Ledger
    from adapters.settings import get_settings
    from pipelines.budget_gate import spent_budget

    spent = spent_budget(Ledger(client), store, get_settings().daily_budget_usd)
    if spent is not None:
        fail(spent.message)


def parse_json_option(text: str | None, name: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{name} is not valid JSON: {exc.msg}")
    if not isinstance(value, dict):
        fail(f"{name} must be a JSON object")
    return dict(value)


@run_app.command("product-copy")
def run_product_copy(
    store: str = STORE,
    input: Path = INPUT,
    options: str | None = OPTIONS,
    as_json: bool = AS_JSON,
    concurrency: int = typer.Option(16, min=1, max=512, help="Products written at once."),
) -> None:
    """Write and publish copy for every product in FILE, inline."""
    from rich.progress import Progress

    from adapters.errors import WandstoreError
    from entrypoints import compose
    from pipelines.product_copy import generate_product_copy

    products = read_products(input)
    opts = parse_json_option(options, "--options")
    svc = compose.services()
    rows: list[dict[str, Any]] = []

    async def go() -> None:
        sem = asyncio.Semaphore(concurrency)
        with Progress(console=console, transient=True, disable=as_json) as progress:
            task = progress.add_task("product copy", total=len(products))

            async def one(product: dict[str, Any]) -> None:
                async with sem:
                    try:
                        pub = await generate_product_copy(svc, store, product, opts)
                        rows.append(
                            {
                                "product_id": pub.product_id,
                                "key": pub.key,
                                "status": "published",
                                "served": pub.meta["served"],
                                "cost_usd": pub.cost_usd,
                                "tokens": pub.meta["tokens"]["prompt"] + pub.meta["tokens"]["completion"],
                            }
                        )
                    except WandstoreError as exc:
                        rows.append(
                            {"product_id": str(product.get("id")), "status": "failed", "error": str(exc)}
                        )
                    progress.advance(task)

            try:
                await asyncio.gather(*(one(p) for p in products))
            finally:
                await svc.runtime.gateway.aclose()  # before asyncio.run closes the loop

    asyncio.run(go())
    if as_json:
        print_json({"results": rows})
    else:
        print_table(
            rows,
            ["product_id", "status", "key", "served", "tokens", "cost_usd", "error"],
            title=f"product copy for {store}",
            right=["tokens", "cost_usd"],
            totals=["tokens", "cost_usd"],
        )
    if any(r["status"] == "failed" for r in rows):
        raise typer.Exit(1)


@enqueue_app.command("product-copy")
def enqueue_product_copy(
    store: str = STORE,
    input: Path = INPUT,
    options: str | None = OPTIONS,
    as_json: bool = AS_JSON,
) -> None:
    """Validate and enqueue one product_copy job per product in FILE on queue `batch`.

    Refused (exit 2, nothing enqueued) while the store's daily budget is spent.
    """
    from entrypoints import compose

    broker = compose.process_broker()
    from pipelines.status import JobStatus
    from pipelines.submit import submit_product_copy

    products = read_products(input)
    opts = parse_json_option(options, "--options")
    refuse_if_budget_spent(broker.client, store)
    status = JobStatus(broker.client)
    ids = [
        {"job_id": submit_product_copy(broker, status, store, p, opts), "product_id": str(p.get("id"))}
        for p in products
    ]
    if as_json:
        print_json({"jobs": ids})
    else:
        print_table(ids, ["job_id", "product_id"], title=f"enqueued {len(ids)} job(s) on 'batch'")


def _display(field: str, value: Any) -> Any:
    from datetime import UTC, datetime

    if field.endswith("_at") and isinstance(value, float):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
    return json.dumps(value) if isinstance(value, dict | list) else value


def status(
    job_id: str = typer.Argument(..., help="A job id (printed by enqueue) or a build id."),
    as_json: bool = AS_JSON,
) -> None:
    """Show a job's status, progress, outputs and cost."""
    from adapters.settings import get_settings
    from entrypoints.compose import redis_client
    from pipelines.status import JobStatus

    info = JobStatus(redis_client(get_settings())).get(job_id)
    if info is None:
        fail(f"no job {job_id!r} (ids are printed by `enqueue`; status is kept for 7 days)", code=1)
        return
    if as_json:
        print_json(info)
        return
    rows = [{"field": k, "value": _display(k, v)} for k, v in info.items()]
    print_table(rows, ["field", "value"], title=f"job {job_id}")
