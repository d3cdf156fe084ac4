"""`prompts eval`: every case on every version through the gateway, side by side; exit 1 on a failure."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from entrypoints.cli.output import console, fail, print_json, print_table
from entrypoints.cli.prompt_refs import registry, resolve

if TYPE_CHECKING:
    from agents.evals.report import EvalReport

AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def eval_prompt(
    agent: str = typer.Argument(..., help="Agent (prompt folder)."),
    versions: str = typer.Option(..., "--versions", help="Comma-separated versions or labels, e.g. v1,v2."),
    cases: Path | None = typer.Option(
        None, "--cases", help="Cases file (default prompts/AGENT/cases.jsonl)."
    ),
    concurrency: int = typer.Option(8, min=1, max=256, help="Cases run at once."),
    as_json: bool = AS_JSON,
) -> None:
    """Run every case on every version through the configured gateway; exit 1 if a version fails."""
    from rich.progress import Progress

    from adapters.logs import configure_logging
    from adapters.settings import get_settings
    from agents.evals import load_cases, run_eval, summarize
    from agents.evals.cases import cases_path
    from agents.gateway import GatewayClient
    from entrypoints.compose import gateway_config

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    reg = registry()
    names = list(dict.fromkeys(v.strip() for v in versions.split(",") if v.strip()))
    if not names:
        fail("--versions needs at least one version, e.g. --versions v1,v2")
    resolved = {n: resolve(reg, agent, n) for n in names}
    chosen = list(dict.fromkeys(resolved.values()))
    # Shown next to the version when it was asked for by label ("v1 (production)").
    aliases = {v: n for n, v in resolved.items() if n != v}
    case_list = load_cases(cases or cases_path(reg.root, agent))
    config = gateway_config(settings)
    gateway = GatewayClient(config)
    with Progress(console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task(
            f"{agent}: {len(case_list)} cases x {len(chosen)} versions", total=len(case_list) * len(chosen)
        )
        outcomes = asyncio.run(
            run_eval(
                gateway,
                reg,
                agent,
                chosen,
                case_list,
                concurrency=concurrency,
                on_done=lambda _: progress.advance(task),
                close_gateway=True,
            )
        )
    report = summarize(agent, chosen, outcomes)
    if as_json:
        print_json({**report.as_dict(), "labels": aliases, "gateway": config.base_url})
    else:
        print_eval(report, gateway_url=config.base_url, aliases=aliases)
    raise typer.Exit(0 if report.ok else 1)


ASSERTION_ORDER = (
    "schema_valid",
    "length",
    "must_contain",
    "must_not_contain",
    "banned_phrases",
    "grounded",
    "max_cost_usd",
    "max_latency_ms",
)


def print_eval(report: EvalReport, *, gateway_url: str, aliases: dict[str, str] | None = None) -> None:
    """The side-by-side table, then every failure with its case and reason."""
    from rich.table import Table

    from agents.usage import nano_to_usd

    table = Table(title=f"{report.agent}: {report.cases} cases, gateway {gateway_url}")
    table.add_column("")
    for v in report.versions:
        alias = f" ({aliases[v.version]})" if aliases and v.version in aliases else ""
        table.add_column(f"{v.version}{alias} {'PASS' if v.ok else 'FAIL'}", justify="right")

    def row(name: str, cell: Any) -> None:
        table.add_row(name, *(str(cell(v)) for v in report.versions))

    row("cases passed", lambda v: f"{v.passed}/{v.cases}")
    kinds = {k for v in report.versions for k in v.assertions}
    for kind in sorted(kinds, key=lambda k: (*ASSERTION_ORDER, k).index(k)):
        row(kind, lambda v, k=kind: "{}/{}".format(*v.assertions.get(k, [0, 0])))
    row("calls (repaired, invalid)", lambda v: f"{v.calls} ({v.repaired}, {v.invalid})")
    row("errors", lambda v: v.errors)
    row("prompt tokens", lambda v: f"{v.prompt_tokens:,}")
    row("completion tokens", lambda v: f"{v.completion_tokens:,}")
    row("cost_usd", lambda v: format(nano_to_usd(v.cost_nano), "f"))
    row("p50 latency ms", lambda v: f"{v.latency_p50_ms:.0f}")
    row("cache hits (calls)", lambda v: v.cache_hits)
    row("cached prompt tokens", lambda v: f"{v.cached_prompt_tokens:,}")
    console.print(table)
    if report.failures:
        shown = report.failures[:50]
        print_table(
            [f.__dict__ for f in shown],
            ["version", "case", "assertion", "reason"],
            title=f"failures ({len(report.failures)})",
        )
        if len(report.failures) > len(shown):
            console.print(f"... {len(report.failures) - len(shown)} more (use --json for all)")
