"""Where a copy job's CPU goes: the Procfile's worker with one part made free at a time.

A profile of the worker misleads here: 128 threads and an event loop share one GIL, and a
sample lands where a thread waits for it, not where the CPU goes. This benchmark measures
instead: the same N product-copy jobs (zero-latency gateway) through the Procfile's worker
command, run on `bench.stubbed_worker` with each part in turn made free, interleaved with
runs of the whole pipeline, all in one run. What a part costs is the pipeline's CPU per job
minus the stubbed worker's (user and system time apart: file and socket calls show as
system time).

`python -m bench.where [--count N] [--rounds R] [--quick]`
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from bench.catalog import catalog
from bench.client import Client
from bench.env import BenchEnv, procfile_command
from bench.report import Section, fmt, load_note, quiet_driver_logs
from bench.runs import run_copy, warm_up

TITLE = "1c. Where a copy job's CPU goes: the worker with one part made free (zero-latency gateway)"
PIPELINE = "the pipeline"
CONFIGS = {
    PIPELINE: ({}, "as production runs it"),
    "objects": ({"BENCH_STUB": "objects"}, "the object store in memory (no files)"),
    "drafts": ({"BENCH_STUB": "drafts"}, "no draft: no draft or copy object, no draft state in Redis"),
    "ledger": ({"BENCH_STUB": "ledger"}, "no budget hold or settlement (scripts, log line, metrics)"),
    "result_cache": ({"BENCH_STUB": "result_cache"}, "no result cache (lock, read, write)"),
    "logs": ({"LOG_LEVEL": "WARNING"}, "no INFO log lines (three a job)"),
    "all of these": (
        {"BENCH_STUB": "drafts,ledger,result_cache", "LOG_LEVEL": "WARNING"},
        "drafts, ledger, result cache and logs",
    ),
}


def _argv() -> list[str]:
    return [
        "bench.stubbed_worker:setup" if a == "entrypoints.worker:setup" else a
        for a in procfile_command("worker")
    ]


def _times(pids: list[int]) -> tuple[float, float]:
    import psutil

    user = system = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        user, system = user + t.user, system + t.system
    return user, system


def measure(count: int, rounds: int, progress: bool = True) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGS}
    start = 500_000
    with BenchEnv(latency_ms=0) as env:
        client = Client(env.redis_url)
        try:
            for n in range(rounds):
                order = list(CONFIGS) if n % 2 == 0 else list(reversed(CONFIGS))
                for name in order:
                    extra, _ = CONFIGS[name]
                    worker = env.start_worker("where", _argv(), extra_env=dict(extra))
                    warm_up(env, client, worker)
                    pids = worker.worker_pids()
                    u0, s0 = _times(pids)
                    batch = run_copy(
                        env, client, worker, catalog(count, start=start), count, label=name, progress=progress
                    )
                    u1, s1 = _times(pids)
                    start += count
                    if batch.done != count:
                        raise RuntimeError(f"{name}: {batch.done} of {count} jobs done: {batch.errors[:2]}")
                    runs[name].append(
                        {
                            "rate": batch.rate,
                            "user": (u1 - u0) / count * 1000,
                            "system": (s1 - s0) / count * 1000,
                        }
                    )
                    env.stop(worker)
        finally:
            client.close()
    return runs


def run(count: int, rounds: int, *, quick: bool = False, progress: bool = True) -> Section:
    runs = measure(count, rounds, progress)

    def med(name: str, what: str) -> float:
        return statistics.median(r[what] for r in runs[name])

    def cpu(r: dict[str, Any]) -> float:
        return float(r["user"] + r["system"])

    base = statistics.median(cpu(r) for r in runs[PIPELINE])
    rows = []
    for name, (_, what) in CONFIGS.items():
        cpus = [cpu(r) for r in runs[name]]
        total = statistics.median(cpus)
        rows.append(
            [
                name if name == PIPELINE else f"without {name}",
                what,
                fmt(med(name, "rate")),
                f"{fmt(total, 2)} ({fmt(min(cpus), 1)} to {fmt(max(cpus), 1)})",
                fmt(med(name, "user"), 2),
                fmt(med(name, "system"), 2),
                "" if name == PIPELINE else fmt(base - total, 2),
            ]
        )
    notes = [
        f"{count:,} distinct products per run, {rounds} runs of each, interleaved (the order reversed "
        "every other round); medians, with the range of CPU ms per job in brackets.",
        "a part's cost is what making it free saves; the parts overlap (drafts write objects), so "
        "the savings do not add up.",
        load_note(),
    ]
    return Section(
        title=TITLE,
        command="python -m bench.where" + (" --quick" if quick else f" --count {count} --rounds {rounds}"),
        columns=[
            "worker",
            "what is made free",
            "jobs / s",
            "CPU ms / job",
            "user ms",
            "system ms",
            "saved ms",
        ],
        rows=rows,
        notes=notes,
    )


def main(argv: list[str] | None = None) -> Section:
    parser = argparse.ArgumentParser(prog="python -m bench.where", description=__doc__)
    parser.add_argument("--count", type=int, default=1500, help="jobs per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 jobs, one round")
    args = parser.parse_args(argv)
    quiet_driver_logs()
    count, rounds = (200, 1) if args.quick else (args.count, args.rounds)
    section = run(count, rounds, quick=args.quick)
    section.print()
    return section


if __name__ == "__main__":
    main()
