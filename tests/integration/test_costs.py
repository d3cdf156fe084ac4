"""`costs` and `budget` on the command line, read back against the usage records themselves."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from adapters.errors import InvalidInput
from tests.conftest import sample_products
from tests.helpers import arun

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


@contextmanager
def usage_lines() -> Iterator[list[dict[str, Any]]]:
    """Capture the `usage_recorded` log lines (one JSON object per record), at INFO."""
    old = structlog.get_config()
    capture = structlog.testing.LogCapture()
    structlog.configure(processors=[capture], wrapper_class=structlog.make_filtering_bound_logger(20))
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        structlog.configure(**old)
        lines.extend(e for e in capture.entries if e["event"] == "usage_recorded")


def cli(*args: str) -> Any:
    from entrypoints.cli.main import app

    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def write_some_copy(services: Any) -> None:
    from pipelines.product_copy import generate_product_copy

    work = [
        ("stanley1913", sample_products("stanley1913")[20]),
        ("stanley1913", sample_products("stanley1913")[21]),
        ("stanley1913", sample_products("stanley1913")[20]),  # a result-cache hit
        ("electricshop", sample_products("electricshop")[20]),
    ]
    for store, product in work:
        arun(generate_product_copy(services, store, product, job_id=f"job-{store}-{product['id']}"))


def test_costs_json_matches_the_usage_records(services: Any, sample_stores: Any, gateway: Any) -> None:
    # Given copy written for two stores, one of it served from the result cache
    with usage_lines() as records:
        write_some_copy(services)
    # When ops ask for costs as JSON
    report = json.loads(cli("costs", "--json").stdout)
    # Then every row is the sum of its records, grouped by store, pipeline, agent, model, prompt
    expected: dict[tuple[str, ...], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for r in records:
        row = expected[(r["store"], r["pipeline"], r["agent"], r["model"], r["prompt"])]
        cache_hit = r["served"] == "result_cache"
        fresh = r["served"] == "fresh"
        row["calls"] += 0 if cache_hit else 1
        for kind in ("prompt_tokens", "cached_prompt_tokens", "completion_tokens"):
            row[kind] += r[kind] if fresh else 0
        row["cost_usd"] += Decimal(r["cost_usd"])
        row["gateway_cache_hits"] += r["served"] == "gateway_cache"
        row["result_cache_hits"] += cache_hit
    got = {
        (row["store"], row["pipeline"], row["agent"], row["model"], row["prompt"]): {
            **{k: v for k, v in row.items() if k not in ("store", "pipeline", "agent", "model", "prompt")},
            "cost_usd": Decimal(row["cost_usd"]),
        }
        for row in report["rows"]
    }
    assert (
        set(got)
        == set(expected)
        == {
            ("stanley1913", "product_copy", "product_copy", "openai/gpt-4o-mini", "product_copy@v1"),
            ("electricshop", "product_copy", "product_copy", "openai/gpt-4o-mini", "product_copy@v1"),
        }
    )
    for key, want in expected.items():
        assert {k: got[key][k] for k in want} == dict(want), key
    stanley = ("stanley1913", "product_copy", "product_copy", "openai/gpt-4o-mini", "product_copy@v1")
    assert got[stanley]["result_cache_hits"] == 1 and got[stanley]["calls"] == 2
    # and the totals are the sum of the rows, with money as exact decimal strings
    assert report["totals"]["calls"] == len([r for r in records if r["served"] != "result_cache"]) == 3
    assert Decimal(report["totals"]["cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in records)
    assert set(report["totals"]) >= {
        "calls",
        "prompt_tokens",
        "cached_prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "gateway_cache_hits",
        "result_cache_hits",
    }


def test_costs_filters_and_groups(services: Any, sample_stores: Any, gateway: Any) -> None:
    from adapters.ledger import Entry, Ledger, today

    # Given today's copy and an older day's usage in the ledger
    write_some_copy(services)
    old = Entry("old-1", "stanley1913", "2026-11-01", "product_copy", "product_copy", "openai/gpt-4o-mini",
                "product_copy@v1", {"calls": 1, "prompt_tokens": 10, "cost_nano": 1500})  # fmt: skip
    Ledger(services.redis).settle(old)
    # When ops filter by store and day, grouped by day
    by_day = json.loads(cli("costs", "--store", "stanley1913", "--by", "store,day", "--json").stdout)
    nov1 = json.loads(
        cli("costs", "--since", "2026-11-01", "--until", "2026-11-01", "--by", "model", "--json").stdout
    )
    # Then each view holds just what was asked for
    assert [r["day"] for r in by_day["rows"]] == ["2026-11-01", today()]
    assert {r["store"] for r in by_day["rows"]} == {"stanley1913"}
    assert nov1["rows"] == [
        {
            "model": "openai/gpt-4o-mini",
            "calls": 1,
            "prompt_tokens": 10,
            "cached_prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": "0.0000015",
            "gateway_cache_hits": 0,
            "result_cache_hits": 0,
            "saved_usd": "0",
        }
    ]


def test_costs_table_is_readable(services: Any, sample_stores: Any, gateway: Any) -> None:
    # Given some copy written
    write_some_copy(services)
    # When ops ask for costs without --json
    out = cli("costs", "--by", "store").stdout
    # Then a table shows each store, the totals and the columns that matter
    for text in ("stanley1913", "electricshop", "total", "cost_usd", "result_hits", "saved_usd"):
        assert text in out, out


def test_costs_refuses_unknown_groupings_and_dates(services: Any, sample_stores: Any) -> None:
    with pytest.raises(InvalidInput, match="use one or more of store, day, pipeline"):
        cli("costs", "--by", "store,colour")
    with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
        cli("costs", "--since", "last week")


def test_budget_set_and_show(services: Any, sample_stores: Any) -> None:
    # When ops set a store's daily budget
    assert cli("budget", "set", "stanley1913", "0.01").exit_code == 0
    # Then it is shown with today's spend and what remains
    shown = json.loads(cli("budget", "show", "stanley1913", "--json").stdout)
    assert shown["daily_budget_usd"] == "0.01" and shown["source"] == "override"
    assert shown["spent_usd"] == "0" and shown["remaining_usd"] == "0.01"
    # and clearing it brings back the default
    cli("budget", "clear", "stanley1913")
    shown = json.loads(cli("budget", "show", "stanley1913", "--json").stdout)
    assert shown["source"] == "DAILY_BUDGET_USD" and shown["daily_budget_usd"] == "50"


def test_budget_set_refuses_a_bad_amount(services: Any, sample_stores: Any) -> None:
    result = cli("budget", "set", "stanley1913", "lots")
    assert result.exit_code == 2 and "not a number" in result.stderr
    result = cli("budget", "set", "stanley1913", "--", "-5")
    assert result.exit_code == 2 and "zero or more" in result.stderr
