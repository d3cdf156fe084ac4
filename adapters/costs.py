"""The cost report: ledger counters summed by the keys asked for (CLI `costs`, and the API)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapters.errors import InvalidInput
from adapters.ledger import Cell, Ledger, usd

GROUP_KEYS = ("store", "day", "pipeline", "agent", "model", "prompt")
DEFAULT_BY = ("store", "pipeline", "agent", "model", "prompt")
# Report fields in order; money is a decimal string of USD (no float anywhere).
COUNTS = ("calls", "prompt_tokens", "cached_prompt_tokens", "completion_tokens")
HITS = ("gateway_cache_hits", "result_cache_hits")
FIELDS = (*COUNTS, "cost_usd", *HITS, "saved_usd")


def parse_by(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """`"store,model"` (or a list) to grouping keys; an unknown key is refused, naming the known ones."""
    if text is None:
        return DEFAULT_BY
    parts = text.split(",") if isinstance(text, str) else list(text)
    keys = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown or not keys:
        raise InvalidInput(
            f"cannot group costs by {', '.join(unknown) or 'nothing'}: "
            f"use one or more of {', '.join(GROUP_KEYS)}"
        )
    return keys


def parse_day(text: str | None, what: str) -> date | None:
    """An ISO date (YYYY-MM-DD) or None."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date: use YYYY-MM-DD (UTC days)") from None


@dataclass
class _Sum:
    counters: dict[str, int]

    def add(self, metric: str, value: int) -> None:
        self.counters[metric] = self.counters.get(metric, 0) + value

    def fields(self) -> dict[str, Any]:
        c = self.counters
        return {
            **{k: c.get(k, 0) for k in COUNTS},
            "cost_usd": usd(c.get("cost_nano", 0)),
            **{k: c.get(k, 0) for k in HITS},
            "saved_usd": usd(c.get("saved_nano", 0)),
        }

    def quality(self) -> dict[str, Any]:
        """How a version behaves: answers that failed validation (share of calls), repairs, mean latency."""
        c = self.counters
        calls = c.get("calls", 0)
        return {
            "invalid": c.get("invalid", 0),
            "invalid_rate": round(c.get("invalid", 0) / calls, 4) if calls else 0.0,
            "repaired": c.get("repaired", 0),
            "latency_ms_avg": round(c.get("latency_us", 0) / calls / 1000, 1) if calls else 0.0,
        }


def summarize(cells: Iterable[Cell], by: Sequence[str]) -> dict[str, Any]:
    """`{"rows": [{<by keys>, <FIELDS>}], "totals": {<FIELDS>}}`, rows sorted by their keys."""
    groups: dict[tuple[str, ...], _Sum] = {}
    total = _Sum({})
    for cell in cells:
        group = tuple(getattr(cell, k) for k in by)
        groups.setdefault(group, _Sum({})).add(cell.metric, cell.value)
        total.add(cell.metric, cell.value)
    per_version = "prompt" in by

    def fields(s: _Sum) -> dict[str, Any]:
        return {**s.fields(), **(s.quality() if per_version else {})}

    rows = [{**dict(zip(by, group, strict=True)), **fields(s)} for group, s in sorted(groups.items())]
    return {"rows": rows, "totals": fields(total)}


def cost_report(
    ledger: Ledger,
    *,
    store: str | None = None,
    since: date | None = None,
    until: date | None = None,
    by: Sequence[str] = DEFAULT_BY,
) -> dict[str, Any]:
    """What was spent and saved in [since, until] (UTC days, inclusive), grouped by `by`."""
    if since and until and since > until:
        raise InvalidInput(f"--since {since} is after --until {until}")
    return summarize(ledger.scan(since, until, store), by)


def since_snapshot(before: Iterable[Cell], after: Iterable[Cell]) -> list[Cell]:
    """The counters added between two scans (e.g. what one demo run spent on a shared ledger)."""

    def key(c: Cell) -> tuple[str, ...]:
        return (c.store, c.day, c.pipeline, c.agent, c.model, c.prompt, c.metric)

    old = {key(c): c.value for c in before}
    out = []
    for cell in after:
        added = cell.value - old.get(key(cell), 0)
        if added:
            out.append(Cell(**{**cell.__dict__, "value": added}))
    return out
