"""`wandstore-agents drafts list|show|approve|reject|feedback|prune`: review from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from entrypoints.cli.known import known_store
from entrypoints.cli.output import console, err_console, fail, print_json, print_table

drafts_app = typer.Typer(
    help="Review what the models wrote before it goes live: list, show, approve (with edits), reject.",
    no_args_is_help=True,
)
STORE_ARG = typer.Argument(..., help="Store slug.", callback=known_store)
DRAFT_ARG = typer.Argument(..., help="A draft id (`drafts list STORE`, or a generation's draft_id).")
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
BY = "cli"  # who a CLI decision is recorded as (the API records the token's id)


def _review() -> tuple[Any, Any]:
    """The configured Redis and object store, with logging set up (no model client, no worker)."""
    from adapters.logs import configure_logging
    from adapters.settings import get_settings
    from adapters.store import open_store
    from entrypoints.compose import redis_client

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return redis_client(settings), open_store(settings)


def _to_gateway() -> bool:
    from adapters.settings import get_settings

    return get_settings().cf_api_token is not None


def _followup(store: str, draft: dict[str, Any]) -> None:
    """Queue the worker's follow-up (gateway feedback, Shopify push) when the decision left one."""
    from entrypoints import compose
    from pipelines.drafts_push import followup_due, submit_followup

    if followup_due(draft):
        submit_followup(compose.process_broker(), store, draft["id"])
        err_console.print("queued for the worker: gateway feedback and/or the Shopify push", highlight=False)


def _decided(draft: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(draft)
        return
    last = (draft.get("decisions") or [{}])[-1]
    changes = ", ".join(c["field"] for c in last.get("changes") or []) or "none"
    shopify = (draft.get("shopify") or {}).get("status", "-")
    console.print(
        f"draft {draft['id']}: {draft['status']} (edits: {changes}; shopify: {shopify})", highlight=False
    )


def _guard(work: Any) -> Any:
    from adapters.errors import InvalidInput, NotFound
    from pipelines.drafts import DraftConflict

    try:
        return work()
    except (NotFound, DraftConflict, InvalidInput) as exc:
        fail(str(exc))


@drafts_app.command("list")
def list_drafts(
    store: str = STORE_ARG,
    kind: str | None = typer.Option(None, "--kind", help="copy or theme."),
    status: str | None = typer.Option(None, "--status", help="pending, approved, rejected or live."),
    product: str | None = typer.Option(None, "--product", help="Only this product's copy drafts."),
    limit: int = typer.Option(100, min=1, max=500, help="At most this many, newest first."),
    as_json: bool = AS_JSON,
) -> None:
    """STORE's drafts, newest first."""
    from domain.drafts import check_kind, check_status
    from pipelines.drafts import Drafts

    client, objects = _review()
    rows = _guard(
        lambda: Drafts(client, objects).list(
            store,
            kind=check_kind(kind) if kind else None,
            status=check_status(status) if status else None,
            product=product,
            limit=limit,
        )
    )
    if as_json:
        print_json({"store": store, "drafts": rows})
        return
    table = [
        {
            **row,
            "target": row.get("product_id") or row.get("build_id"),
            "checks": "pass" if row.get("checks_passed") else "FAIL",
            "shopify": (row.get("shopify") or {}).get("status", ""),
            "created": _iso(row["created_at"]),
        }
        for row in rows
    ]
    print_table(
        table,
        ["id", "kind", "status", "target", "checks", "shopify", "prompt_ref", "created"],
        title=f"drafts of {store} ({len(rows)})",
    )


@drafts_app.command("show")
def show_draft(store: str = STORE_ARG, draft_id: str = DRAFT_ARG, as_json: bool = AS_JSON) -> None:
    """One draft: what it proposes, its checks, its diff against what is live and the catalog, decisions."""
    from pipelines.drafts import Drafts

    client, objects = _review()
    draft = _guard(lambda: Drafts(client, objects).get(store, draft_id))
    if as_json:
        print_json(draft)
        return
    meta = draft.get("meta") or {}
    target = draft.get("product_id") or draft.get("build_id")
    console.print(
        f"[bold]{draft['kind']} draft {draft['id']}[/] for {target}: {draft['status']}  "
        f"prompt {meta.get('prompt_ref')}  model {meta.get('model')}  cost ${meta.get('cost_usd')}",
        highlight=False,
    )
    print_table(draft["checks"], ["name", "passed", "detail"], title="checks")
    for against, rows in (draft.get("diff") or {}).items():
        if not rows:
            continue
        changed = [
            {"field": r["field"], "before": _short(r["before"]), "after": _short(r["after"])}
            for r in rows
            if r.get("changed")
        ]
        print_table(changed, ["field", "before", "after"], title=f"changes against {against}")
    decisions = [
        {**d, "changes": ", ".join(c["field"] for c in d.get("changes") or [])}
        for d in draft.get("decisions") or []
    ]
    if decisions:
        print_table(decisions, ["at", "action", "by", "reason", "changes"], title="decisions")
    if draft.get("shopify"):
        console.print(f"shopify: {json.dumps(draft['shopify'])}", highlight=False)


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _short(value: Any, size: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= size else text[: size - 1] + "…"


@drafts_app.command("approve")
def approve_draft(
    store: str = STORE_ARG,
    draft_id: str = DRAFT_ARG,
    edits: Path | None = typer.Option(
        None, "--edits", help="A JSON file of copy fields to change (title, description_html, ...)."
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="One copy field to change, FIELD=TEXT (repeatable), e.g. --set 'title=Linen throw'."
    ),
    note: str | None = typer.Option(None, "--note", help="Why (kept with the decision)."),
    as_json: bool = AS_JSON,
) -> None:
    """Publish a pending draft, with edits validated and sanitized like model output."""
    from pipelines.drafts_review import approve

    changes: dict[str, Any] = {}
    if edits is not None:
        try:
            changes = json.loads(edits.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"--edits {edits}: {exc}")
        if not isinstance(changes, dict):
            fail(f"--edits {edits}: expected a JSON object of copy fields")
    for item in set_:
        field, sep, text = item.partition("=")
        if not sep:
            fail(f"--set {item!r}: expected FIELD=TEXT")
        changes[field.strip()] = text
    client, objects = _review()
    draft = _guard(
        lambda: approve(
            client,
            objects,
            store,
            draft_id,
            by=BY,
            edits=changes or None,
            note=note,
            to_gateway=_to_gateway(),
        )
    )
    _followup(store, draft)
    _decided(draft, as_json)


@drafts_app.command("reject")
def reject_draft(
    store: str = STORE_ARG,
    draft_id: str = DRAFT_ARG,
    reason: str = typer.Option(..., "--reason", "-r", help="Why: feedback for the prompt that made it."),
    as_json: bool = AS_JSON,
) -> None:
    """Keep a pending draft off the storefront; the reason becomes feedback."""
    from pipelines.drafts_review import reject

    client, objects = _review()
    draft = _guard(
        lambda: reject(client, objects, store, draft_id, by=BY, reason=reason, to_gateway=_to_gateway())
    )
    _followup(store, draft)
    _decided(draft, as_json)


@drafts_app.command("feedback")
def export_feedback(
    prompt: str = typer.Argument("product_copy", help="The prompt (agent) the feedback is about."),
    version: str | None = typer.Option(None, "--version", help="Only feedback on this prompt version."),
    cases: Path | None = typer.Option(
        None, "--cases", help="Write `prompts eval` cases (JSONL) to this file: `prompts eval --cases FILE`."
    ),
    as_json: bool = AS_JSON,
) -> None:
    """Reviewers' rejections and edits for PROMPT, and eval cases made from them."""
    from pipelines.drafts_feedback import cases as make_cases
    from pipelines.drafts_feedback import feedback

    client, _ = _review()
    rows = feedback(client, prompt, version)
    if cases is not None:
        made = make_cases(rows)
        # `note` says where a case came from; the eval's case format has no such field.
        lines = [json.dumps({k: v for k, v in c.items() if k != "note"}, ensure_ascii=False) for c in made]
        cases.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        console.print(f"{len(made)} cases written to {cases}", highlight=False)
    if as_json:
        print_json(rows)
        return
    table = [
        {
            **r,
            "changes": ", ".join(c["field"] for c in r.get("changes") or []),
            "target": r.get("product_id") or r.get("build_id"),
        }
        for r in rows
    ]
    print_table(
        table,
        ["at", "store", "prompt_version", "action", "target", "reason", "changes", "by"],
        title=f"feedback on {prompt} ({len(rows)})",
    )


@drafts_app.command("prune")
def prune_drafts(
    older_than_days: float | None = typer.Option(
        None,
        "--older-than-days",
        min=0.0,
        help="Decided at least this many days ago [default: DRAFT_RETENTION_DAYS].",
    ),
    stores: list[str] = typer.Option(
        [], "--store", help="Only this store (repeat for more) [default: every store]."
    ),
    as_json: bool = AS_JSON,
) -> None:
    """Remove decided copy drafts (rejected, set aside, replaced) older than the retention, row and body.

    Pending drafts, each product's live draft, drafts whose Shopify push waits and theme drafts
    stay. The worker does this once an hour on its own; this runs it now.
    """
    from rich.progress import Progress

    from adapters.settings import get_settings
    from pipelines.drafts_retention import DAY_S, prune

    for name in stores:
        known_store(name)
    days = get_settings().draft_retention_days if older_than_days is None else older_than_days
    if older_than_days is None and days <= 0:
        fail("DRAFT_RETENTION_DAYS is 0 (every draft is kept): pass --older-than-days N to prune anyway")
    client, objects = _review()
    with Progress(console=err_console, transient=True, disable=as_json) as progress:
        task = progress.add_task("pruning drafts", total=None)

        def turn(store: str, total: int) -> None:
            progress.update(task, total=total, description=f"pruning drafts of {store}")
            progress.advance(task)

        done = _guard(
            lambda: prune(client, objects, older_than_s=days * DAY_S, stores=stores or None, on_store=turn)
        )
    result = {
        "older_than_days": days,
        "checked": done.checked,
        "pruned": done.pruned,
        "by_store": done.by_store,
    }
    if as_json:
        print_json(result)
        return
    rows = [{"store": name, "pruned": count} for name, count in sorted(done.by_store.items())]
    print_table(
        rows,
        ["store", "pruned"],
        title=f"drafts decided over {days:g} days ago: {done.pruned} of {done.checked} removed",
        right=("pruned",),
    )
