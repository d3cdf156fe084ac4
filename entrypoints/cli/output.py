"""Readable tables for people, JSON for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output is read by people later (logs, CI, README): don't squeeze it to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def print_result(as_json: bool, data: dict[str, Any], text: str) -> None:
    """A command's answer: `data` as JSON with `--json`, else `text` for people (printed as is)."""
    if as_json:
        print_json(data)
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)


def totals_row(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], label: str = "total"
) -> dict[str, Any]:
    """A row of the sums of `columns` (numbers only; decimal, so costs add up exactly)."""
    total: dict[str, Any] = {}
    for col in columns:
        values = [row[col] for row in rows if isinstance(row.get(col), int | float | Decimal | str)]
        try:
            total[col] = sum((Decimal(str(v)) for v in values if str(v) != ""), Decimal(0))
        except InvalidOperation:
            continue
        if all(isinstance(v, int) for v in values):
            total[col] = int(total[col])
    return {"_label": label, **total}


def print_table(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str],
    *,
    title: str | None = None,
    right: Sequence[str] = (),
    totals: Sequence[str] = (),
) -> None:
    """A table; with `totals`, a last row of those columns' sums, labelled in the first column."""
    rows = list(rows)
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    if totals and rows:
        total = totals_row(rows, totals)
        table.add_section()
        table.add_row(
            *(total["_label"] if i == 0 else str(total.get(c, "")) for i, c in enumerate(columns)),
            style="bold",
        )
    console.print(table)


def fail(message: str, code: int = 2) -> None:
    """Print an error a person can act on, and exit."""
    # The message is printed as is: error texts hold regexes and brackets that rich would eat.
    err_console.print("error:", style="bold red", end=" ")
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(code)
