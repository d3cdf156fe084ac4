"""Theme builds from the command line: `run theme-build`, `enqueue theme-build`, `themes list|activate`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer

from adapters.pipeline_names import THEME_BUILD
from entrypoints.cli.jobs import AS_JSON, STORE, enqueue_app, read_products, refuse_if_budget_spent, run_app
from entrypoints.cli.known import known_store
from entrypoints.cli.output import console, fail, print_json, print_table

themes_app = typer.Typer(
    help="A store's published theme builds: list them, activate one (rollback).", no_args_is_help=True
)

BRIEF = typer.Option(
    ..., "--brief", "-b", help='What the merchant wants, e.g. "calm, premium linen; editorial".'
)
AUDIENCE = typer.Option(None, "--audience", help="Who the store sells to.")
TONE = typer.Option(None, "--tone", help="Tone of voice.")
PALETTE = typer.Option(None, "--palette-hint", help='Colour wishes, e.g. "navy and blue" or "#0b3d91".')
LOCALE = typer.Option(
    None, "--locale", help="The page's language, e.g. es or pt-BR (default: the store's locale)."
)
PRODUCTS = typer.Option(
    None,
    "--products",
    "-p",
    help="Save this products.json as the store's catalog snapshot first (else the stored one is used).",
)
DEMO_BRIEF = {
    "description": "Rugged, dependable drinkware for the outdoors and the everyday; confident, "
    "warm and plain-spoken, never hype.",
    "audience": "Campers, commuters and workday regulars who want gear that lasts",
    "palette_hint": "deep forest green and warm off-white",
}


def brief_from(
    description: str,
    audience: str | None,
    tone: str | None,
    palette: str | None,
    locale: str | None = None,
) -> dict[str, str]:
    brief = {
        "description": description,
        "audience": audience,
        "tone": tone,
        "palette_hint": palette,
        "locale": locale,
    }
    return {k: v for k, v in brief.items() if v}


def _objects() -> Any:
    """The configured object store, with logging set up (these commands build no services)."""
    from adapters.logs import configure_logging
    from adapters.settings import get_settings
    from adapters.store import open_store

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return open_store(settings)


def where(objects: Any, key: str) -> str:
    """A place a person can open: a file path for the local store, the bucket and key for R2."""
    root = getattr(objects, "root", None)
    if root is not None:
        return str(Path(root) / key)
    return f"r2://{getattr(objects, 'bucket', '?')}/{key}"


def _save_products(objects: Any, store: str, path: Path | None) -> None:
    if path is None:
        return
    from pipelines.theme_build import save_catalog

    count = save_catalog(objects, store, {"products": read_products(path)})
    console.print(f"catalog snapshot: {count} products saved for {store}", highlight=False)


def result_rows(result: Any, objects: Any) -> dict[str, Any]:
    """What a finished build wrote where, and what it cost."""
    return {
        "build_id": result.build_id,
        "store": result.store,
        "files": len(result.keys),
        "theme": result.theme_key,
        "pointer": result.pointer_key if result.live else "(waiting for review)",
        "draft": result.draft_id,
        "live": result.live,
        "preview": where(objects, result.preview_key),
        "cost_usd": result.meta["cost_usd"],
        "cost_by_agent": result.meta["cost_by_agent"],
        "calls": result.meta["calls"],
        "adjustments": len(result.adjustments),
        "review": {"rounds": result.review["rounds"], "approved": result.review["approved"]},
    }


@run_app.command("theme-build")
def run_theme_build(
    store: str = STORE,
    brief: str = BRIEF,
    audience: str | None = AUDIENCE,
    tone: str | None = TONE,
    palette_hint: str | None = PALETTE,
    locale: str | None = LOCALE,
    products: Path | None = PRODUCTS,
    as_json: bool = AS_JSON,
) -> None:
    """Build, check and publish a theme inline; `status BUILD_ID` shows its progress meanwhile."""
    from adapters.errors import WandstoreError
    from entrypoints import compose
    from pipelines.theme_build import build_theme, new_build_id

    svc = compose.services()
    _save_products(svc.store, store, products)
    payload = brief_from(brief, audience, tone, palette_hint, locale)
    build_id = new_build_id()
    svc.status.queued(build_id, pipeline=THEME_BUILD, store=store, queue="inline", build_id=build_id)

    with console.status(f"theme build {build_id}: queued") as spinner:

        def progress(step: str) -> None:
            svc.status.update(build_id, progress=step)
            spinner.update(f"theme build {build_id}: {step}")

        async def build() -> Any:
            try:
                return await build_theme(svc, store, payload, build_id=build_id, progress=progress)
            finally:
                await svc.runtime.gateway.aclose()  # before asyncio.run closes the loop

        try:
            svc.status.update(build_id, status="running")
            result = asyncio.run(build())
        except WandstoreError as exc:
            svc.status.update(build_id, status="failed", progress=f"failed: {exc}", error=str(exc))
            fail(f"theme build {build_id} failed: {exc}", code=1)
            return
    svc.status.update(
        build_id,
        status="done",
        progress="done",
        output_keys=[result.theme_key, result.preview_key, *([result.pointer_key] if result.live else [])],
        draft_id=result.draft_id,
        live=str(result.live).lower(),
        cost_usd=result.meta["cost_usd"],
    )
    print_result(result_rows(result, svc.store), as_json)


def print_result(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(row)
        return
    fields = [{"field": k, "value": json.dumps(v) if isinstance(v, dict) else v} for k, v in row.items()]
    print_table(fields, ["field", "value"], title=f"theme build {row['build_id']}")


@enqueue_app.command("theme-build")
def enqueue_theme_build(
    store: str = STORE,
    brief: str = BRIEF,
    audience: str | None = AUDIENCE,
    tone: str | None = TONE,
    palette_hint: str | None = PALETTE,
    locale: str | None = LOCALE,
    products: Path | None = PRODUCTS,
    as_json: bool = AS_JSON,
) -> None:
    """Validate and enqueue one theme build on queue `batch`; prints the build id (= job id)."""
    from entrypoints import compose

    broker = compose.process_broker()
    from pipelines.status import JobStatus
    from pipelines.submit import submit_theme_build

    refuse_if_budget_spent(broker.client, store)
    objects = _objects()
    _save_products(objects, store, products)
    build_id = submit_theme_build(
        broker,
        JobStatus(broker.client),
        store,
        brief_from(brief, audience, tone, palette_hint, locale),
        objects=objects,
    )
    if as_json:
        print_json({"build_id": build_id, "job_id": build_id})
    else:
        console.print(
            f"enqueued theme build [bold]{build_id}[/] on 'batch'; `wandstore-agents status {build_id}`"
        )


@themes_app.command("list")
def list_themes(
    store: str = typer.Argument(..., help="Store slug.", callback=known_store),
    as_json: bool = AS_JSON,
) -> None:
    """Published builds of STORE, newest first; `*` marks the one current.json points at."""
    from domain.keys import check_store
    from pipelines.theme_publish import list_builds

    rows = list_builds(_objects(), check_store(store))
    if as_json:
        print_json({"store": store, "builds": rows})
        return
    if not rows:
        console.print(f"no published theme builds for {store}")
        return
    for row in rows:
        row["current"] = "*" if row["current"] else ""
    print_table(
        rows,
        ["current", "build_id", "generated_at", "sections", "approved", "cost_usd", "brief"],
        title=f"theme builds of {store}",
        right=["cost_usd", "sections"],
    )


@themes_app.command("activate")
def activate_theme(
    store: str = typer.Argument(..., help="Store slug.", callback=known_store),
    build_id: str = typer.Argument(..., help="A published build id (see `themes list STORE`)."),
    as_json: bool = AS_JSON,
) -> None:
    """Point STORE's current.json at BUILD_ID (a rollback, or a roll forward)."""
    from domain.keys import check_store
    from entrypoints.cli.known import registry
    from pipelines.drafts import DraftConflict
    from pipelines.drafts_review import activate_reviewed

    try:
        pointer = activate_reviewed(
            registry().r, _objects(), check_store(store), build_id, by="cli", reason="activate"
        )
    except DraftConflict as exc:
        fail(str(exc))
        return
    if as_json:
        print_json(pointer)
    else:
        console.print(
            f"themes/{store}/current.json -> {build_id} (was {pointer['previous_build_id'] or 'none'})",
            highlight=False,
        )
