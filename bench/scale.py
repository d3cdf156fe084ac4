"""Benchmark 5, scale: a 10,000-product catalog copy built from the sample data, one worker.

Products are generated one at a time from the three sample stores' real exports (a new id and
title each, so every one is a fresh generation) and submitted as the API does, never more than
`--window` waiting in Redis: neither the driver nor Redis nor the worker holds the catalog.
Zero-latency dev gateway; a progress bar while it runs. Target: the worker's RSS grows by less
than 200 MB from its warmed-up size.

`python -m bench.scale [--count N] [--quick]`
"""

from __future__ import annotations

import argparse
import os

from bench.catalog import catalog
from bench.client import Client
from bench.env import BenchEnv, peak_rss_mb, rss_mb
from bench.report import Section, fmt, load_note, quiet_driver_logs
from bench.runs import run_copy, start_worker, worker_peak_rss_mb, worker_rss_mb

TITLE = "5. Scale: a 10,000-product catalog copy, streamed"
GROWTH_TARGET_MB = 200


def run(count: int, window: int, *, quick: bool = False, progress: bool = True) -> Section:
    driver_before = rss_mb(os.getpid())
    with BenchEnv(latency_ms=0) as env:
        client = Client(env.redis_url)
        try:
            worker = start_worker(env, client)
            base = worker_rss_mb(worker)
            products = catalog(count)
            batch = run_copy(
                env, client, worker, products, count, window=window, label="catalog copy", progress=progress
            )
            peak = worker_peak_rss_mb(worker)
            end = worker_rss_mb(worker)
            redis_peak = int(client.redis.info("memory")["used_memory_peak"]) / 2**20
            stats = env.gateway_stats()
        finally:
            client.close()
    growth = peak - base
    driver_growth = peak_rss_mb(os.getpid()) - driver_before
    rows = [
        ["products", f"{batch.count:,}"],
        ["seconds", fmt(batch.elapsed_s, 1)],
        ["products / s", fmt(batch.rate)],
        ["worker CPU ms / product", fmt(batch.worker_cpu_s / batch.count * 1000, 2)],
        ["worker RSS warmed up (MB)", fmt(base, 0)],
        ["worker peak RSS (MB)", fmt(peak, 0)],
        ["worker RSS at the end (MB)", fmt(end, 0)],
        ["worker RSS growth to peak (MB)", fmt(growth, 0)],
        ["driver peak RSS growth (MB)", fmt(driver_growth, 0)],
        ["Redis peak memory (MB)", fmt(redis_peak, 0)],
    ]
    notes = [
        f"{batch.done:,} done, {batch.failed} failed; {stats['model_calls']:,} model calls; at most "
        f"{window:,} jobs waiting in Redis at once.",
    ]
    if batch.other:
        notes.append(f"jobs neither done nor failed when the queue drained: {batch.other}")
    if batch.errors:
        notes.append("first errors: " + " | ".join(batch.errors))
    notes.append(load_note())
    return Section(
        title=TITLE,
        command="python -m bench.scale" + (" --quick" if quick else f" --count {count}"),
        columns=["measure", "value"],
        rows=rows,
        notes=notes,
        verdicts=[
            (f"worker RSS growth < {GROWTH_TARGET_MB} MB ({fmt(growth, 0)} MB)", growth < GROWTH_TARGET_MB),
            (f"every product done ({batch.done:,} of {batch.count:,})", batch.done == batch.count),
        ],
    )


def main(argv: list[str] | None = None) -> Section:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=1000, help="most jobs waiting in Redis at once")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 300 products")
    args = parser.parse_args(argv)
    quiet_driver_logs()
    count = 300 if args.quick else args.count
    section = run(count, args.window, quick=args.quick)
    section.print()
    return section


if __name__ == "__main__":
    main()
