"""`wandstore-agents demo`: the main job, end to end, on embedded defaults.

The path a new store takes: `stores add`, then its catalog (an upload of its products
export; the demo has no Shopify to sync from), then personalization from that catalog, then
the publishing lifecycle: generate (product copy and a theme build, through real messages to
a real worker), review (the stores' policies publish what passes on their own and list what
waits: one store reviews its copy, and themes are reviewed by default), approve, publish.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from entrypoints.cli.costs import print_costs
from entrypoints.cli.output import console, err_console, print_json, print_table

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "shopify"
# The sample stores' shops, currencies and locales (data/shopify/SOURCES.md: the prices are GBP and INR).
SAMPLE_STORES = {
    "stanley1913": {"shop_domain": "stanley1913.myshopify.com", "currency": "GBP", "locale": "en-GB"},
    "electricshop": {"shop_domain": "electricshop.myshopify.com", "currency": "GBP", "locale": "en-GB"},
    "kiids-kingdom": {"shop_domain": "kiids-kingdom.myshopify.com", "currency": "INR", "locale": "en-IN"},
}
COSTS_BY = ("store", "model", "prompt")
THEME_STORE = "stanley1913"
# One store reviews its copy before it goes live; the others publish what passes their checks.
REVIEWED_STORE = "electricshop"
POLICIES = {REVIEWED_STORE: {"copy": "review", "theme": "review"}}


def sample_products(per_store: int) -> list[tuple[str, dict[str, Any]]]:
    """The first `per_store` products of each sample store's real Shopify export."""
    out: list[tuple[str, dict[str, Any]]] = []
    for store in SAMPLE_STORES:
        data = json.loads((DATA_DIR / f"{store}.products.json").read_text(encoding="utf-8"))
        out.extend((store, p) for p in data["products"][:per_store])
    return out


def add_stores_and_catalogs(svc: Any) -> list[dict[str, Any]]:
    """`stores add` and `catalog upload` for each sample store; one row per store."""
    from adapters.stores import StoreRegistry
    from pipelines.catalog_snapshot import write_export

    registry = StoreRegistry(svc.redis)
    rows = []
    for store, fields in SAMPLE_STORES.items():
        record, _ = registry.update(store, **fields, publish=POLICIES.get(store))
        with (DATA_DIR / f"{store}.products.json").open("rb") as export:
            summary = write_export(svc.store, store, export, currency=record.currency)
        counts = summary["counts"]
        rows.append(
            {
                "store": store,
                "shop": record.shop_domain,
                "currency": record.currency,
                "publish": f"copy {record.publish.copy_}, theme {record.publish.theme}",
                "live": counts["live"],
                "not shown": counts["total"] - counts["live"],
                "skipped": counts["skipped"],
            }
        )
    return rows


def personalize_shoppers(broker: Any, svc: Any) -> list[tuple[str, str]]:
    """One shopper per store, ranked from the store's catalog (no candidates sent); (store, job id)."""
    from pipelines.catalog_snapshot import live_rows
    from pipelines.submit import submit_personalize

    jobs = []
    for store in SAMPLE_STORES:
        live = live_rows(svc.store.get(f"stores/{store}/catalog.json").json())
        context = {"segment": "returning", "device": "iPhone", "viewed": [str(live[0]["id"])]}
        jobs.append((store, submit_personalize(broker, svc.status, store, "demo-shopper-1", context)))
    return jobs


def _personalized(svc: Any, jobs: list[tuple[str, str]], results: list[dict[str, Any]]) -> list[Any]:
    rows = []
    for (store, _), info in zip(jobs, results, strict=True):
        keys = info.get("output_keys") or []
        doc = svc.store.get(keys[0]).json() if keys else {}
        rows.append(
            {
                "store": store,
                "status": info.get("status"),
                "first picks": ", ".join(doc.get("ranked_product_ids", [])[:3]) or info.get("error", ""),
                "served": doc.get("meta", {}).get("served", ""),
                "key": keys[0] if keys else "",
            }
        )
    return rows


def wait_for(status: Any, job_ids: list[str], label: str, timeout_s: float = 300) -> list[dict[str, Any]]:
    """Poll job status until every job is done or failed, with a progress bar."""
    from rich.progress import Progress

    deadline = time.monotonic() + timeout_s
    finished: dict[str, dict[str, Any]] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(label, total=len(job_ids))
        while len(finished) < len(job_ids) and time.monotonic() < deadline:
            for job_id in job_ids:
                if job_id in finished:
                    continue
                info = status.get(job_id) or {}
                if info.get("status") in ("done", "failed"):
                    finished[job_id] = info
                    progress.advance(task)
            time.sleep(0.05)
    return [finished.get(j) or {"id": j, "status": "timed out"} for j in job_ids]


def demo(
    per_store: int = typer.Option(4, min=1, max=60, help="Products per sample store (3 stores)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Embedded Valkey, dev gateway and local store; a real worker consumes real messages."""
    from dramatiq import Worker

    from adapters.costs import since_snapshot, summarize
    from adapters.ledger import Ledger
    from entrypoints import compose
    from entrypoints.cli.themes import DEMO_BRIEF
    from pipelines.submit import submit_product_copy, submit_theme_build

    broker = compose.process_broker()
    svc = compose.services()
    # With --json, stdout is the JSON document alone.
    (err_console if as_json else console).print(
        f"[bold]wandstore-agents demo[/]  redis={broker.client.connection_pool.connection_kwargs.get('port')}"
        f"  gateway={svc.runtime.gateway.config.base_url}  store={svc.store.name}",
        highlight=False,
    )
    ledger = Ledger(svc.redis)
    before = list(ledger.scan())
    worker = Worker(broker, worker_threads=32, worker_timeout=50)
    worker.start()
    try:
        # 1. The stores, then their catalogs: every pipeline below starts from these.
        catalogs = add_stores_and_catalogs(svc)
        shoppers = personalize_shoppers(broker, svc)
        products = sample_products(per_store)
        # 2. Generate: a theme build for one sample store runs alongside the product copy.
        theme_job = submit_theme_build(broker, svc.status, THEME_STORE, DEMO_BRIEF, objects=svc.store)
        waited = wait_for(svc.status, [job for _, job in shoppers], "personalization")
        personalized = _personalized(svc, shoppers, waited)
        runs = []
        # Twice: the second run is the same requests again, served from the result cache.
        for label in ("product copy", "product copy, again"):
            ids = [submit_product_copy(broker, svc.status, store, p) for store, p in products]
            runs.append(_rows(svc, products, wait_for(svc.status, ids, label)))
        theme = wait_for(svc.status, [theme_job], "theme build")[0]
        # 3. Review: the policies published what passed; what waits is listed, then approved (4, 5).
        waiting = _waiting(svc)
        decided = _approve_all(svc, waiting)
    finally:
        worker.stop()
    costs = summarize(since_snapshot(before, ledger.scan()), COSTS_BY)
    rows, again = runs
    live = _live(svc, products)
    theme_row = _theme_row(svc, theme)
    if as_json:
        print_json(
            {
                "catalogs": catalogs,
                "personalization": personalized,
                "product_copy": rows,
                "second_run": again,
                "waiting_for_review": waiting,
                "approved": decided,
                "live": live,
                "costs": costs,
                "theme_build": theme_row,
            }
        )
        return
    print_table(
        catalogs,
        ["store", "shop", "currency", "publish", "live", "not shown", "skipped"],
        title="1. stores added, catalogs uploaded (only live products reach shoppers)",
        right=["live", "not shown", "skipped"],
    )
    print_table(
        personalized,
        ["store", "status", "first picks", "served", "key"],
        title="a shopper per store, personalized from the store's catalog",
    )
    print_table(
        rows,
        ["store", "product", "status", "went live", "key", "tokens", "cost_usd", "served"],
        title="2. generated: product copy (a draft each; live at once where the policy is auto, checks pass)",
        right=["tokens", "cost_usd"],
    )
    print_table(
        again,
        ["store", "product", "status", "went live", "tokens", "cost_usd", "served"],
        title="the same products again: served from the result cache, no model call",
        right=["tokens", "cost_usd"],
    )
    print_table(
        waiting,
        ["store", "kind", "target", "draft", "checks", "why"],
        title="3. review: what waits (`wandstore-agents drafts list STORE --status pending`)",
    )
    print_table(
        decided,
        ["store", "kind", "target", "draft", "status"],
        title="4. approved (`wandstore-agents drafts approve STORE DRAFT`)",
    )
    print_table(
        live,
        ["store", "what", "key", "from draft"],
        title="5. published: what the storefront reads now",
    )
    print_costs(costs, COSTS_BY, "costs of this demo (wandstore-agents costs --by store,model,prompt)")
    fields = [{"field": k, "value": v} for k, v in theme_row.items()]
    print_table(fields, ["field", "value"], title=f"theme build {theme_row.get('build_id')}")
    root = getattr(svc.store, "root", None)
    if root is not None:
        console.print(f"outputs under {Path(root).resolve()}")


def _waiting(svc: Any) -> list[dict[str, Any]]:
    """Every pending draft of the sample stores, with why it waits."""
    from adapters.stores import StoreRegistry
    from pipelines.drafts import Drafts

    drafts = Drafts(svc.redis, svc.store)
    rows = []
    for store in SAMPLE_STORES:
        record = StoreRegistry(svc.redis).require(store)
        for row in drafts.list(store, status="pending", limit=500):
            policy = record.publish.as_dict()[row["kind"]]
            why = "the store reviews it" if policy == "review" else "a check failed or the critic objected"
            rows.append(
                {
                    "store": store,
                    "kind": row["kind"],
                    "target": row.get("product_id") or row.get("build_id"),
                    "draft": row["id"],
                    "checks": "pass" if row.get("checks_passed") else "FAIL",
                    "why": why,
                }
            )
    return rows


def _approve_all(svc: Any, waiting: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The merchant approves every waiting draft, as they would after reading each one."""
    from pipelines.drafts_review import approve

    rows = []
    for row in waiting:
        draft = approve(svc.redis, svc.store, row["store"], row["draft"], by="demo", note="looks right")
        rows.append({**row, "status": draft["status"]})
    return rows


def _live(svc: Any, products: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The storefront's keys after review: each product's copy, and the theme pointer."""
    from adapters.errors import NotFound
    from domain.keys import product_copy_key, theme_pointer_key

    rows = []
    for store, product in products:
        key = product_copy_key(store, str(product["id"]))
        try:
            meta = svc.store.get(key).json()["meta"]
        except NotFound:
            continue
        rows.append({"store": store, "what": "copy", "key": key, "from draft": meta.get("draft_id", "")})
    try:
        pointer = svc.store.get(theme_pointer_key(THEME_STORE)).json()
        rows.append(
            {
                "store": THEME_STORE,
                "what": "theme",
                "key": theme_pointer_key(THEME_STORE),
                "from draft": f"build {pointer['build_id']} ({pointer['reason']})",
            }
        )
    except NotFound:
        pass
    return rows


def _theme_row(svc: Any, info: dict[str, Any]) -> dict[str, Any]:
    """Where the demo's theme went and what it cost."""
    from entrypoints.cli.themes import where

    keys = info.get("output_keys") or []
    row: dict[str, Any] = {
        "build_id": info.get("id"),
        "store": info.get("store"),
        "status": info.get("status"),
        "cost_usd": info.get("cost_usd"),
        "draft": info.get("draft_id"),
    }
    if keys:
        row.update(theme=keys[0], preview=where(svc.store, keys[1]))
    return row


def _rows(svc: Any, products: list[tuple[str, dict[str, Any]]], results: list[dict[str, Any]]) -> list[Any]:
    """One table row per product: its draft, whether it went live, what it cost and how it was served."""
    rows = []
    for (store, product), info in zip(products, results, strict=True):
        keys = info.get("output_keys") or []
        meta: dict[str, Any] = {}
        if keys:
            doc = svc.store.get(keys[0]).json()
            meta = doc.get("meta") or {}
        tokens = meta.get("tokens", {})
        rows.append(
            {
                "store": store,
                "product": str(product["title"])[:38],
                "status": info.get("status"),
                "went live": info.get("live", ""),
                "key": keys[0] if keys else info.get("error", ""),
                "tokens": (tokens.get("prompt", 0) + tokens.get("completion", 0)) if tokens else "",
                "cost_usd": meta.get("cost_usd", ""),
                "served": meta.get("served", ""),
            }
        )
    return rows
