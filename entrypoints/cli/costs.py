"""`costs` and `budget`: what was spent and saved, and how much a store may spend a day."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import typer

from entrypoints.cli.known import known_store
from entrypoints.cli.output import fail, print_json, print_result, print_table

budget_app = typer.Typer(help="Show or set a store's daily budget (USD).", no_args_is_help=True)
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _ledger() -> Any:
    from adapters.ledger import Ledger
    from adapters.settings import get_settings
    from entrypoints.compose import redis_client

    return Ledger(redis_client(get_settings()))


# Table headers short enough for a 160-column table; JSON keeps the full field names.
SHORT = {
    "calls": "calls",
    "prompt_tokens": "in_tokens",
    "cached_prompt_tokens": "cached_tokens",
    "completion_tokens": "out_tokens",
    "cost_usd": "cost_usd",
    "gateway_cache_hits": "gateway_hits",
    "result_cache_hits": "result_hits",
    "saved_usd": "saved_usd",
}


def print_costs(report: dict[str, Any], by: tuple[str, ...], title: str) -> None:
    """The report as a table, with a totals row."""
    totals = {**dict.fromkeys(by, ""), **report["totals"]}
    totals[by[0]] = "total"
    rows = [{SHORT.get(k, k): v for k, v in row.items()} for row in [*report["rows"], totals]]
    print_table(rows, [*by, *SHORT.values()], title=title, right=list(SHORT.values()))
    if "prompt" in by:
        from entrypoints.cli.prompts import print_version_quality

        print_version_quality(report["rows"])


def costs(
    store: str | None = typer.Option(None, "--store", "-s", help="Only this store.", callback=known_store),
    since: str | None = typer.Option(None, "--since", help="First UTC day, YYYY-MM-DD (default: all)."),
    until: str | None = typer.Option(None, "--until", help="Last UTC day, YYYY-MM-DD (default: today)."),
    by: str = typer.Option(
        "store,pipeline,agent,model,prompt",
        "--by",
        help="Group by any of store, day, pipeline, agent, model, prompt (comma-separated).",
    ),
    as_json: bool = AS_JSON,
) -> None:
    """Tokens, cost and cache hits from the usage ledger, grouped as asked."""
    from adapters.costs import cost_report, parse_by, parse_day
    from domain.keys import check_store

    keys = parse_by(by)
    report = cost_report(
        _ledger(),
        store=check_store(store) if store else None,
        since=parse_day(since, "--since"),
        until=parse_day(until, "--until"),
        by=keys,
    )
    if as_json:
        print_json(report)
        return
    span = f"{since or 'start'} .. {until or 'today'}"
    print_costs(report, keys, f"costs{' of ' + store if store else ''}, {span} (UTC)")


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        fail(f"USD {text!r} is not a number (e.g. 25 or 0.50)")
    if not value.is_finite() or value < 0:
        fail(f"USD {text!r} must be zero or more")
    return value


@budget_app.command("set")
def budget_set(
    store: str = typer.Argument(..., help="Store slug.", callback=known_store),
    usd: str = typer.Argument(..., help="Daily budget in USD, e.g. 25 or 0.50."),
    as_json: bool = AS_JSON,
) -> None:
    """Set the store's daily budget (overrides DAILY_BUDGET_USD for it)."""
    from adapters.ledger import usd_to_nano
    from domain.keys import check_store

    amount = _usd(usd)
    _ledger().set_budget(check_store(store), usd_to_nano(amount))
    data = {"store": store, "daily_budget_usd": str(amount), "source": "override"}
    print_result(as_json, data, f"daily budget of {store}: ${amount}")


@budget_app.command("clear")
def budget_clear(
    store: str = typer.Argument(..., help="Store slug.", callback=known_store), as_json: bool = AS_JSON
) -> None:
    """Drop the store's override: DAILY_BUDGET_USD applies again."""
    from adapters.settings import get_settings
    from domain.keys import check_store

    had = _ledger().clear_budget(check_store(store))
    data = {
        "store": store,
        "removed": had,
        "daily_budget_usd": str(get_settings().daily_budget_usd),
        "source": "DAILY_BUDGET_USD",
    }
    print_result(as_json, data, f"{store}: {'override removed' if had else 'had no override'}")


@budget_app.command("show")
def budget_show(
    store: str = typer.Argument(..., help="Store slug.", callback=known_store), as_json: bool = AS_JSON
) -> None:
    """Today's budget, spend and holds of calls in flight for a store (UTC day)."""
    from adapters.ledger import usd, usd_to_nano
    from adapters.settings import get_settings
    from domain.keys import check_store

    settings = get_settings()
    state = _ledger().budget(check_store(store), usd_to_nano(settings.daily_budget_usd))
    info = {
        "store": store,
        "day": state.day,
        "daily_budget_usd": usd(state.budget_nano),
        "source": "override" if state.overridden else "DAILY_BUDGET_USD",
        "spent_usd": usd(state.spent_nano),
        "reserved_usd": usd(state.reserved_nano),
        "remaining_usd": usd(state.remaining_nano),
        "job_cap_usd": usd(usd_to_nano(settings.job_cap_usd)),
    }
    if as_json:
        print_json(info)
        return
    print_table(
        [{"field": k, "value": v} for k, v in info.items()], ["field", "value"], title=f"budget {store}"
    )
