"""Benchmark 4, cost: a realistic day in miniature, with the caches on and with them off.

The day: catalog copy for the three sample stores (180 products), twice; 2,000
personalization requests from shoppers in 50 cohorts; 3 theme builds. It runs twice on fresh
servers with the Procfile's `worker` and `interactive` processes: once as deployed, once with
`CACHES_ENABLED=false` (no result-cache or AI Gateway cache answers, every request generated
afresh). Model calls, tokens and dollars come from the usage ledger (gpt-4o-mini list prices);
provider calls from the dev gateway (what reached a model). Targets: with the caches on, at
least 80% fewer model calls and at least 60% fewer dollars.

`python -m bench.cost [--quick]`
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.catalog import SAMPLE_STORES, sample
from bench.client import Client
from bench.env import BenchEnv, Child, procfile_command
from bench.report import Section, load_note, quiet_driver_logs
from bench.runs import progress_bar, warm_up

INTERACTIVE = "interactive"
BATCH = "batch"
BRIEFS = {
    "stanley1913": "Rugged, outdoorsy drinkware for people who carry their coffee everywhere.",
    "electricshop": "A clean, trustworthy electronics shop: specs up front, no gimmicks.",
    "kiids-kingdom": "Playful, warm children's clothing and accessories for busy parents.",
}


@dataclass
class Day:
    copy_passes: int = 2
    copy_per_store: int = 60
    personalizations: int = 2000
    cohorts: int = 50
    theme_builds: int = 3


QUICK = Day(copy_per_store=10, personalizations=150, cohorts=10, theme_builds=1)


def ledger_totals(client: Client) -> Counter[str]:
    """Every ledger counter summed, by `pipeline|metric` and by `metric`."""
    from adapters.ledger import Ledger

    out: Counter[str] = Counter()
    for cell in Ledger(client.redis).scan():
        out[f"{cell.pipeline}|{cell.metric}"] += cell.value
        out[cell.metric] += cell.value
    return out


SEGMENTS = ("new", "returning", "vip")
LOCALES = ("en", "fr", "de")
DEVICES = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)")


Request = tuple[str, str, dict[str, Any]]


def _personalization_requests(day: Day, rng: random.Random) -> tuple[list[Request], int]:
    """(store, shopper, context) of shoppers in `day.cohorts` cohorts over the sample stores, and
    how many distinct cohorts the service will see."""
    from pipelines.catalog_snapshot import build_snapshot, parse_snapshot
    from pipelines.cohorts import cohort_of, parse_context

    catalogs, by_category = {}, {}
    for store in SAMPLE_STORES:
        catalogs[store] = parse_snapshot(build_snapshot(store, {"products": list(sample(store))}))
        groups: dict[str, list[str]] = {}
        for p in catalogs[store].products:
            if p.category:
                groups.setdefault(p.category, []).append(p.id)
        by_category[store] = groups
    templates: dict[tuple[Any, ...], None] = {}
    while len(templates) < day.cohorts:
        store = rng.choice(SAMPLE_STORES)
        category = rng.choice(sorted(by_category[store]))
        templates[(store, rng.choice(SEGMENTS), rng.choice(LOCALES), rng.choice(DEVICES), category)] = None
    out, cohorts = [], set()
    for n in range(day.personalizations):
        store, segment, locale, device, category = rng.choice(list(templates))
        viewed = rng.sample(by_category[store][category], min(len(by_category[store][category]), 2))
        # A day's requests are spread out; here they arrive at once: no deadline may cut them short.
        context = {"segment": segment, "locale": locale, "device": device, "viewed": viewed}
        context["deadline_ms"] = 60_000
        cohorts.add((store, cohort_of(parse_context(context), catalogs[store]).key))
        out.append((store, f"shopper-{n:05d}", context))
    return out, len(cohorts)


def replay(day: Day, caches: bool, *, progress: bool) -> dict[str, Any]:
    """Run the day on fresh servers; what the ledger and the gateway counted."""
    from adapters.store import LocalStore
    from pipelines import submit
    from pipelines.catalog_snapshot import write_snapshot

    notes: list[str] = []
    flag = {"CACHES_ENABLED": "true" if caches else "false"}
    with BenchEnv(latency_ms=0) as env:
        client = Client(env.redis_url)
        try:
            objects = LocalStore(env.objects_dir)
            for store in SAMPLE_STORES:
                write_snapshot(objects, store, {"products": list(sample(store))})
            batch = env.start_worker("worker", extra_env=flag)
            interactive: Child | None = None
            if hasattr(submit, "submit_personalize") and day.personalizations:
                interactive = env.start_worker("interactive", procfile_command("interactive"), flag)
            warm_up(env, client, batch)
            env.gateway_reset()
            before = ledger_totals(client)

            products = [(s, p) for s in SAMPLE_STORES for p in sample(s)[: day.copy_per_store]]
            for n in range(day.copy_passes):
                ids = [client.submit_copy(store, p) for store, p in products]
                _drain(client, BATCH, len(ids), f"catalog copy, pass {n + 1}", progress)
            if interactive is not None:
                reqs, cohorts = _personalization_requests(day, random.Random(7))
                notes.append(f"{len(reqs):,} personalization requests fell into {cohorts} distinct cohorts")
                for store, shopper, context in reqs:
                    submit.submit_personalize(client.broker, client.status, store, shopper, context)
                _drain(client, INTERACTIVE, len(reqs), "personalization", progress)
            else:
                notes.append("personalization not measured: `submit_personalize` has not landed")
            if hasattr(submit, "submit_theme_build") and day.theme_builds:
                stores = [SAMPLE_STORES[i % len(SAMPLE_STORES)] for i in range(day.theme_builds)]
                for store in stores:
                    brief = {"description": BRIEFS[store]}
                    submit.submit_theme_build(client.broker, client.status, store, brief, objects=objects)
                _drain(client, BATCH, len(stores), "theme builds", progress)
            else:
                notes.append("theme builds not measured: `submit_theme_build` has not landed")
            after = ledger_totals(client)
            stats = env.gateway_stats()
            failed = int(client.redis.hlen("dramatiq:batch.XQ.msgs") or 0)
            failed += int(client.redis.hlen("dramatiq:interactive.XQ.msgs") or 0)
        finally:
            client.close()
    used = after - before
    return {"ledger": used, "gateway": stats, "notes": notes, "dead_letters": failed}


def _drain(client: Client, queue: str, total: int, label: str, progress: bool) -> None:
    with progress_bar(label, total, progress) as advance:
        client.wait_drained(
            queue, timeout_s=1800, interval_s=0.05, on_tick=lambda left: advance(total - left)
        )


PIPELINES = (
    ("product_copy", "catalog copy"),
    ("personalization", "personalization"),
    ("theme_build", "theme builds"),
)


def _cells(totals: Counter[str], prefix: str = "") -> dict[str, float]:
    def get(metric: str) -> int:
        return int(totals.get(prefix + metric, 0))

    calls = get("calls")
    return {
        "calls": calls,
        "provider": calls - get("gateway_cache_hits"),
        "tokens": get("prompt_tokens") + get("completion_tokens"),
        "usd": get("cost_nano") / 1e9,
        "result_hits": get("result_cache_hits"),
        "gateway_hits": get("gateway_cache_hits"),
    }


def run(day: Day, *, quick: bool = False, progress: bool = True) -> Section:
    on = replay(day, True, progress=progress)
    off = replay(day, False, progress=progress)
    rows = []
    for pipeline, label in (*PIPELINES, ("", "the day")):
        prefix = f"{pipeline}|" if pipeline else ""
        a, b = _cells(on["ledger"], prefix), _cells(off["ledger"], prefix)
        if not b["calls"] and pipeline:
            continue
        rows.append(
            [
                label,
                f"{a['calls']:,} / {b['calls']:,}",
                f"{a['provider']:,} / {b['provider']:,}",
                f"{a['tokens']:,} / {b['tokens']:,}",
                f"{a['usd']:.4f} / {b['usd']:.4f}",
                f"{a['result_hits']:,} / {a['gateway_hits']:,}",
                _saving(a["calls"], b["calls"]),
                _saving(a["usd"], b["usd"]),
            ]
        )
    total_on, total_off = _cells(on["ledger"]), _cells(off["ledger"])
    calls_saved = 1 - total_on["calls"] / total_off["calls"] if total_off["calls"] else 0.0
    usd_saved = 1 - total_on["usd"] / total_off["usd"] if total_off["usd"] else 0.0
    notes = [
        f"{day.copy_passes} catalog-copy passes of {day.copy_per_store * len(SAMPLE_STORES)} products, "
        f"{day.personalizations:,} personalization requests over {day.cohorts} cohorts, "
        f"{day.theme_builds} theme builds; caches on / caches off in each cell.",
        "model calls: calls the worker sent to AI Gateway; provider calls: those the gateway did not "
        "answer from its cache; tokens: what the provider processed; the dev gateway also simulates "
        "the provider's prompt cache (cached input tokens at the cached rate), on in both runs.",
        f"dev gateway model calls: {on['gateway']['model_calls']:,} (caches on) / "
        f"{off['gateway']['model_calls']:,} (caches off); dead-lettered jobs: {on['dead_letters']} / "
        f"{off['dead_letters']}.",
        *on["notes"],
    ]
    notes.append(load_note())
    return Section(
        title="4. Cost: a day in miniature, caches on vs. off",
        command="python -m bench.cost" + (" --quick" if quick else ""),
        columns=[
            "work",
            "model calls",
            "provider calls",
            "tokens",
            "USD",
            "result / gateway cache hits",
            "fewer calls",
            "fewer USD",
        ],
        rows=rows,
        notes=notes,
        verdicts=[
            (f">= 80% fewer model calls ({calls_saved:.0%})", calls_saved >= 0.8),
            (f">= 60% fewer dollars ({usd_saved:.0%})", usd_saved >= 0.6),
        ],
    )


def _saving(on: float, off: float) -> str:
    return f"{1 - on / off:.0%}" if off else ""


def main(argv: list[str] | None = None) -> Section:
    parser = argparse.ArgumentParser(prog="python -m bench.cost", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few of everything")
    args = parser.parse_args(argv)
    quiet_driver_logs()
    section = run(QUICK if args.quick else Day(), quick=args.quick)
    section.print()
    return section


if __name__ == "__main__":
    main()
