"""Benchmark 4b, the seed's cost budget: a storefront day at 1M requests through the cohort cache.

The seed budgets AI Gateway at $10-30 a month for 1M storefront requests a day: at most about
$1 of model spend per 1M requests. This replays a synthetic day (`bench.storefront_traffic`)
through the service's own cohort keying and its caches' rules (`bench.cohort_replay`), with no
Redis and no model, and prices the model calls it would make at list prices
(`bench.call_cost`). Then it moves one knob at a time: cohort granularity, the result-cache
TTL, catalog edits a day, and (`--store-counts`) the number of stores sharing the requests.
Target: at most $1 per 1M requests at the service's defaults (gpt-4o-mini list prices). The
method and the assumptions: docs/cost-budget.md.

`python -m bench.storefront_day [--requests N] [--stores N] [--seed N] [--store-counts 50,1000] [--json]`
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.call_cost import GPT, HAIKU, MODELS, per_call_usd, personalizer_tokens, product_copy_tokens
from bench.cohort_replay import FIELDS, Knobs, Outcome, Replay
from bench.report import Section, progress_console
from bench.storefront_traffic import Day, generate

TITLE = "4b. The seed's cost budget: a storefront day through the cohort cache"
BUDGET_USD = Decimal(1)  # per 1M storefront requests
QUICK_REQUESTS = 20_000
EDITS_PER_STORE = 10.0  # the day's assumed catalog edits per store
HOUR = 3600
MODEL_NAMES = {GPT: "gpt-4o-mini", HAIKU: "Claude Haiku 4.5"}

ALL = frozenset(FIELDS)
DEFAULTS = Knobs("service defaults", edits_per_store=EDITS_PER_STORE)


def _without(*names: str) -> frozenset[str]:
    return ALL - set(names)


# (knob, setting, what changes from the defaults)
GRANULARITY: list[tuple[str, dict[str, Any]]] = [
    ("top 1 category (MAX_TOP_CATEGORIES=1)", {"top_categories": 1}),
    ("no categories", {"fields": _without("categories")}),
    ("no cart", {"fields": _without("cart")}),
    ("no referrer", {"fields": _without("referrer")}),
    ("no device", {"fields": _without("device")}),
    ("no device, no referrer", {"fields": _without("device", "referrer")}),
    ("locale as language (en-us -> en)", {"language_only": True}),
    ("segment + locale only", {"fields": frozenset({"segment", "locale"})}),
    ("one cohort per store", {"fields": frozenset()}),
]
TTLS = (300, 900, 4 * HOUR, 12 * HOUR, 24 * HOUR)
EDIT_RATES = (0.0, 2.0, 50.0, 200.0)
# What it would take: coarser cohorts and a longer TTL together.
COARSE = frozenset({"segment", "locale", "categories"})
SEGMENT_LANGUAGE = frozenset({"segment", "locale"})
COMBINED: list[tuple[str, dict[str, Any]]] = [
    (
        "segment + language + top category, TTL 24 h",
        {"fields": COARSE, "language_only": True, "top_categories": 1, "ttl_s": 24 * HOUR},
    ),
    ("segment + language, TTL 24 h", {"fields": SEGMENT_LANGUAGE, "language_only": True, "ttl_s": 24 * HOUR}),
    (
        "segment + language, TTL 24 h, no catalog edits",
        {"fields": SEGMENT_LANGUAGE, "language_only": True, "ttl_s": 24 * HOUR, "edits_per_store": 0.0},
    ),
    (
        "segment + language, TTL 24 h, 50 edits/store/day",
        {"fields": SEGMENT_LANGUAGE, "language_only": True, "ttl_s": 24 * HOUR, "edits_per_store": 50.0},
    ),
    ("language only, TTL 24 h", {"fields": frozenset({"locale"}), "language_only": True, "ttl_s": 24 * HOUR}),
    ("one cohort per store, TTL 4 h", {"fields": frozenset(), "ttl_s": 4 * HOUR}),
    ("one cohort per store, TTL 24 h", {"fields": frozenset(), "ttl_s": 24 * HOUR}),
]


@dataclass(frozen=True)
class Row:
    """One knob setting's outcome, priced."""

    knob: str
    setting: str
    stores: int
    outcome: Outcome
    usd: dict[str, Decimal]  # model -> $ per 1M requests (personalization)

    @property
    def meets(self) -> bool:
        return self.usd[GPT] <= BUDGET_USD

    def cells(self) -> list[str]:
        o = self.outcome
        return [
            self.knob,
            self.setting,
            f"{o.cohorts:,}",
            f"{o.per_million(o.generations):,.0f}",
            f"{o.per_million(o.paid_calls):,.0f}",
            f"{o.hit_ratio:.2%}",
            f"{self.usd[GPT]:,.2f}",
            f"{self.usd[HAIKU]:,.2f}",
        ]

    def as_json(self) -> dict[str, Any]:
        o = self.outcome
        return {
            "knob": self.knob,
            "setting": self.setting,
            "stores": self.stores,
            "ttl_s": o.ttl_s,
            "edits_per_store": o.knobs.edits_per_store,
            "requests": o.requests,
            "cohorts": o.cohorts,
            "generations": o.generations,
            "model_calls": o.paid_calls,
            "cohort_hit_ratio": round(o.hit_ratio, 6),
            "model_calls_per_1m": round(o.per_million(o.paid_calls), 1),
            "usd_per_1m": {MODEL_NAMES[m]: float(round(v, 4)) for m, v in self.usd.items()},
            "copy_calls": o.copy_calls,
        }


COLUMNS = [
    "knob",
    "setting",
    "cohorts",
    "generations / 1M",
    "model calls / 1M",
    "cohort hit %",
    "$ / 1M gpt-4o-mini",
    "$ / 1M Claude Haiku 4.5",
]
COST_COLUMNS = ["call", "tokens in + out", "model", "$ / call", "calls $1 buys", "cohort hit % that needs"]
COPY_COLUMNS = ["edits / store / day", "copy calls", "$ gpt-4o-mini", "$ Claude Haiku 4.5"]


def price(outcome: Outcome) -> dict[str, Decimal]:
    """Personalization dollars per 1M requests: model calls per 1M x one call's list price."""
    per_million = Decimal(outcome.paid_calls) * 1_000_000 / Decimal(outcome.requests)
    return {model: per_million * per_call_usd(model) for model in MODELS}


def settings_list(service_ttl: int) -> list[tuple[str, str, Knobs]]:
    """Every knob setting measured on the day, the defaults first."""
    out = [("defaults", f"all six fields, top 2 categories, TTL {_dur(service_ttl)}", DEFAULTS)]
    out += [
        ("cohort granularity", label, replace(DEFAULTS, label=label, **change))
        for label, change in GRANULARITY
    ]
    out += [("result-cache TTL", _dur(ttl), replace(DEFAULTS, label=_dur(ttl), ttl_s=ttl)) for ttl in TTLS]
    out += [
        (
            "catalog edits / store / day",
            f"{rate:g}",
            replace(DEFAULTS, label=f"{rate:g}", edits_per_store=rate),
        )
        for rate in EDIT_RATES
    ]
    out += [("combined", label, replace(DEFAULTS, label=label, **change)) for label, change in COMBINED]
    return out


def _dur(seconds: int) -> str:
    return f"{seconds // HOUR} h" if seconds % HOUR == 0 else f"{seconds // 60} min"


@contextmanager
def _no_gc() -> Iterator[None]:
    """Millions of small tuples and ints: the cyclic collector would re-scan them for seconds."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class Result:
    """The whole benchmark: the day and every row."""

    day: Day
    rows: list[Row]
    elapsed_s: float
    cpu_s: float

    def find(self, knob: str, stores: int | None = None) -> list[Row]:
        return [r for r in self.rows if r.knob == knob and (stores is None or r.stores == stores)]

    @property
    def defaults(self) -> Row:
        return self.find("defaults", self.day.stores)[0]


def measure(
    day: Day,
    *,
    store_counts: tuple[int, ...] = (),
    progress: bool = True,
) -> Result:
    """Generate the day, key it, replay every knob setting (and the defaults at other store counts)."""
    started, cpu = time.monotonic(), time.process_time()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with _no_gc(), Progress(*columns, console=progress_console, transient=True, disable=not progress) as bar:
        rows = _one_day(day, settings_list(_service_ttl()), bar)
        cheapest = _cheapest_meeting(rows)
        for stores in store_counts:
            if stores == day.stores:
                continue
            again = [("stores sharing the requests", f"{stores:,}, defaults", DEFAULTS)]
            if cheapest is not None:
                again.append(
                    ("stores sharing the requests", f"{stores:,}, {cheapest.setting}", cheapest.outcome.knobs)
                )
            rows += _one_day(replace(day, stores=stores), again, bar)
    return Result(day, rows, time.monotonic() - started, time.process_time() - cpu)


def _service_ttl() -> int:
    from bench.cohort_replay import Service

    return Service.defaults().ttl_s


def _one_day(day: Day, plan: list[tuple[str, str, Knobs]], bar: Progress) -> list[Row]:
    task = bar.add_task(f"a day of {day.requests:,} requests at {day.stores} stores", total=day.requests)
    traffic = generate(day, progress=lambda n: bar.update(task, completed=n))
    bar.update(task, completed=day.requests)
    replay = Replay(traffic)
    steps = bar.add_task("keying with the service's functions", total=4)
    replay.prepare(progress=lambda _: bar.advance(steps))
    bar.update(steps, completed=4)
    knobs_task = bar.add_task("knob settings", total=len(plan))
    rows = []
    for knob, setting, knobs in plan:
        outcome = replay.run(knobs)
        rows.append(Row(knob, setting, day.stores, outcome, price(outcome)))
        bar.advance(knobs_task)
    return rows


def _cheapest_meeting(rows: list[Row]) -> Row | None:
    """The combined setting that keeps the most cohorts while meeting the budget (at the day's edits)."""
    meeting = [
        r
        for r in rows
        if r.knob == "combined" and r.meets and r.outcome.knobs.edits_per_store == EDITS_PER_STORE
    ]
    return max(meeting, key=lambda r: r.outcome.cohorts) if meeting else None


def section(result: Result, *, quick: bool = False) -> Section:
    """The rows as a `Section` for the terminal and RESULTS.md."""
    day = result.day
    base = result.defaults
    tokens = personalizer_tokens(GPT)
    calls_for_budget = {m: int(BUDGET_USD / per_call_usd(m)) for m in MODELS}
    cost_rows = [
        [
            f"personalization ({tokens.prompt_ref})",
            f"{personalizer_tokens(m).prompt_tokens:,} + {personalizer_tokens(m).completion_tokens:,}",
            MODEL_NAMES[m],
            f"{per_call_usd(m):.6f}",
            f"{calls_for_budget[m]:,}",
            f"{1 - calls_for_budget[m] / 1_000_000:.3%}",
        ]
        for m in MODELS
    ]
    cost_rows += [
        [
            f"product copy ({product_copy_tokens(m).prompt_ref})",
            f"{product_copy_tokens(m).prompt_tokens:,} + {product_copy_tokens(m).completion_tokens:,}",
            MODEL_NAMES[m],
            f"{per_call_usd(m, 'copy'):.6f}",
            "",
            "",
        ]
        for m in MODELS
    ]
    copy_rows = []
    for r in [*result.find("defaults", day.stores), *result.find("catalog edits / store / day", day.stores)]:
        o = r.outcome
        copy_rows.append(
            [
                f"{o.knobs.edits_per_store:g}",
                f"{o.copy_calls:,}",
                *(f"{o.copy_calls * per_call_usd(m, 'copy'):,.2f}" for m in MODELS),
            ]
        )
    copy_rows.sort(key=lambda row: float(row[0]))
    cheapest = _cheapest_meeting(result.rows)
    configured = base.outcome.per_million(base.outcome.paid_calls) * float(per_call_usd(tokens.prompt_model))
    copy_usd = base.outcome.copy_calls * per_call_usd(GPT, "copy")
    gpt_calls, haiku_calls = calls_for_budget[GPT], calls_for_budget[HAIKU]
    notes = [
        f"{day.requests:,} personalization requests (one per storefront page) from {day.stores} stores "
        f"(Zipf {day.store_zipf:g}), seed {day.seed}, {EDITS_PER_STORE:g} catalog edits per store a day "
        "unless the row says otherwise; replayed in memory through the service's parse_context, cohort_of, "
        "Cohort.key and shortlist, its result-cache TTL and single flight, and AI Gateway's cache.",
        "generations: result-cache misses; model calls: generations AI Gateway's cache did not answer "
        "(gateway_cache_ttl); cohort hit %: requests that started no generation; $: model calls x one "
        "call's list price (below), personalization only.",
        f"one personalization call: {tokens.prompt_tokens:,} prompt + {tokens.completion_tokens:,} "
        f"completion tokens ({tokens.prompt_ref} rendered over the sample stores, counted with "
        f"agents.tokens); $1 buys {gpt_calls:,} gpt-4o-mini or {haiku_calls:,} Claude Haiku 4.5 calls: "
        f"per 1M requests over {day.stores} stores, {gpt_calls / day.stores:.1f} or "
        f"{haiku_calls / day.stores:.1f} generations per store.",
        f"at the defaults with the model the prompt names ({tokens.prompt_model}): "
        f"${configured:,.2f} per 1M.",
        f"product copy for catalog edits (once issue 18's webhooks queue it), on top: "
        f"{base.outcome.copy_calls:,} calls a day at {EDITS_PER_STORE:g} edits/store/day, "
        f"${copy_usd:.2f} at gpt-4o-mini.",
    ]
    if cheapest is not None:
        notes.append(
            f"the finest combined setting that meets $1 at gpt-4o-mini: {cheapest.setting} "
            f"(${cheapest.usd[GPT]:.2f}; Claude Haiku 4.5 ${cheapest.usd[HAIKU]:.2f})."
        )
    notes.append(f"ran in {result.elapsed_s:.0f} s ({result.cpu_s:.0f} s of CPU, one core, pure Python).")
    return Section(
        title=TITLE,
        command="python -m bench.storefront_day" + (f" --requests {day.requests}" if quick else ""),
        columns=COLUMNS,
        rows=[r.cells() for r in result.rows],
        notes=notes,
        verdicts=[
            (f"<= $1 per 1M requests at the defaults (gpt-4o-mini: ${base.usd[GPT]:,.2f})", base.meets)
        ],
        extra_tables=[
            ("One model call at list prices", COST_COLUMNS, cost_rows),
            ("Product copy from catalog edits (a day)", COPY_COLUMNS, copy_rows),
        ],
    )


def run(requests: int | None = None, *, quick: bool = False, progress: bool = True) -> Section:
    """`make bench`'s section (quick: a day of `QUICK_REQUESTS`)."""
    day = Day(requests=requests or (QUICK_REQUESTS if quick else Day.requests))
    result = measure(day, progress=progress)
    return section(result, quick=quick)


def as_json(result: Result) -> dict[str, Any]:
    day = result.day
    return {
        "requests": day.requests,
        "stores": day.stores,
        "seed": day.seed,
        "budget_usd_per_1m": float(BUDGET_USD),
        "per_call": {
            MODEL_NAMES[m]: {
                "prompt_tokens": personalizer_tokens(m).prompt_tokens,
                "completion_tokens": personalizer_tokens(m).completion_tokens,
                "usd": float(per_call_usd(m)),
                "copy_usd": float(per_call_usd(m, "copy")),
            }
            for m in MODELS
        },
        "defaults_meet_budget": result.defaults.meets,
        "rows": [r.as_json() for r in result.rows],
        "elapsed_s": round(result.elapsed_s, 1),
        "cpu_s": round(result.cpu_s, 1),
    }


def main(argv: list[str] | None = None, out: Callable[[str], None] | None = None) -> Result:
    parser = argparse.ArgumentParser(prog="python -m bench.storefront_day", description=__doc__)
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests in the day (1,000,000)")
    parser.add_argument("--stores", type=int, default=Day.stores, help=f"stores sharing them ({Day.stores})")
    parser.add_argument("--seed", type=int, default=Day.seed)
    parser.add_argument(
        "--store-counts",
        default="",
        help="also replay the day at these store counts, comma-separated (e.g. 50,1000)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    day = Day(requests=args.requests, stores=args.stores, seed=args.seed)
    counts = tuple(int(n) for n in args.store_counts.split(",") if n.strip())
    result = measure(day, store_counts=counts, progress=sys.stderr.isatty())
    if args.json:
        (out or print)(json.dumps(as_json(result), indent=2))
    else:
        section(result).print()
    return result


if __name__ == "__main__":
    main()
