"""Benchmark 1, overhead: the full product-copy pipeline beside its floors, zero-latency gateway.

In one run, against one dev gateway (no added latency) and one Redis:
- the **queue floor**: N bare Dramatiq no-op messages through a bare worker with the
  Procfile's flags (`bench/noop_worker.py`);
- the **worker floor**: N messages to that same worker whose actor makes one call through the
  pipeline's gateway client and nothing else (Dramatiq and litellm, no pipeline work);
- the **client floors**: the same N chat requests product copy sends, from one process and
  one event loop placed on the CPU as the batch worker is, as many at once as the worker has
  threads: plain `litellm.acompletion` with litellm's defaults (the target's floor), and the
  pipeline's gateway client (litellm with the service's settings);
- the **pipeline**: N product-copy jobs (distinct products: no cache can answer) submitted
  as the API does, run by the Procfile's worker, published to the local object store.

Every floor sends the same N request bodies, each round's pipeline the bodies of its own N
products, and the dev gateway is primed with all of them first (untimed), so each phase finds
it equally cheap: the gateway's CPU, Cloudflare's in production, weighs the same on every row.

Every phase runs `--rounds` times (3 by default), interleaved, the order reversed every other
round; both workers stay up throughout (an idle one costs ~1.4% of a core). A row is the
median of its runs. On this project's 2-core hosts one run of each phase read between 47% and
71% for the same commit, so the target is judged on the median of the rounds' ratios
(decision 0034).

Target: the pipeline reaches at least 70% of the plain-litellm floor's rate.

`python -m bench.overhead [--count N] [--rounds R] [--quick]`
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.catalog import catalog
from bench.client import Client
from bench.env import BenchEnv, procfile_command
from bench.report import Section, fmt, load_note, quiet_driver_logs
from bench.runs import (
    Batch,
    FloorProcess,
    cpu_s,
    prime_gateway,
    run_copy,
    warm_up,
    worker_peak_rss_mb,
    worker_threads,
)

# bench/noop_worker.py's queue. Not imported from there: importing that module sets Dramatiq's
# global broker, and actors declared after it (pipelines.actors) would register with it.
NOOP_QUEUE = "bench_noop"
TITLE = "1. Overhead: pipeline vs. its floors (zero-latency gateway)"
TARGET = 0.70
# One run of each phase swung the ratio between 47% and 71% for the same commit on one host;
# the median of three interleaved rounds is what the target is judged on.
ROUNDS = 3
LABELS = {
    "queue": "queue floor: Dramatiq no-op",
    "worker": "worker floor: Dramatiq actor, one call",
    "litellm": "client floor: litellm",
    "gateway": "client floor: gateway client",
    "pipeline": "pipeline: product copy",
}
PHASES = tuple(LABELS)  # a round's order, and the table's


def noop_argv() -> list[str]:
    """The Procfile's worker line, pointed at the bare no-op module and its queue."""
    argv = procfile_command("worker")
    argv = ["bench.noop_worker" if a == "entrypoints.worker:setup" else a for a in argv]
    return [NOOP_QUEUE if a == "batch" else a for a in argv]


def queue_floor(env: BenchEnv, client: Client, worker: Any, count: int) -> dict[str, float]:
    import time

    for n in range(20):  # warm: the worker is up and its consumer is polling
        client.send(NOOP_QUEUE, "bench_noop", n)
    client.wait_drained(NOOP_QUEUE, timeout_s=60)
    pids = worker.worker_pids()
    cpu0 = cpu_s(pids)
    started = time.monotonic()
    for n in range(count):
        client.send(NOOP_QUEUE, "bench_noop", n)
    ended = client.wait_drained(NOOP_QUEUE, timeout_s=600)
    return {"elapsed_s": ended - started, "cpu_s": cpu_s(pids) - cpu0}


def call_floor(
    client: Client, worker: Any, count: int, *, before_timing: Callable[[], None] | None = None
) -> dict[str, float]:
    """The worker floor: N `bench_call` messages (one gateway-client call each, nothing else).

    Twenty untimed messages open its HTTP sessions first; `before_timing` runs after them (e.g.
    to set the gateway's latency for the timed part).
    """
    import time

    from bench.floors import requests

    bodies = requests(count)
    for body in bodies[:20]:
        client.send(NOOP_QUEUE, "bench_call", body)
    client.wait_drained(NOOP_QUEUE, timeout_s=120)
    if before_timing is not None:
        before_timing()
    pids = worker.worker_pids()
    cpu0 = cpu_s(pids)
    started = time.monotonic()
    for body in bodies:
        client.send(NOOP_QUEUE, "bench_call", body)
    ended = client.wait_drained(NOOP_QUEUE, timeout_s=900)
    return {"elapsed_s": ended - started, "cpu_s": cpu_s(pids) - cpu0}


def run(
    count: int,
    *,
    rounds: int = ROUNDS,
    quick: bool = False,
    progress: bool = True,
    profile: Path | None = None,
) -> Section:
    """Every phase `rounds` times, interleaved (the order reversed every other round)."""
    threads = worker_threads()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in PHASES}
    jobs = Jobs()
    floors: dict[str, FloorProcess] = {}
    with BenchEnv(latency_ms=0) as env:
        client = Client(env.redis_url)
        primer: FloorProcess | None = None
        try:
            # Everything boots at once (untimed); the timed phases then run one after another.
            pipeline_worker = env.start_worker("worker")
            noop_worker = env.start_worker("noop", noop_argv())
            floors.update((name, FloorProcess(env, name, count, threads)) for name in ("litellm", "gateway"))
            # Each round's pipeline has products of its own (no cache answers); the gateway knows
            # all their requests, the floors' (the first round's products) among them.
            primer = FloorProcess(env, "gateway", count * rounds, threads)
            for floor in floors.values():
                floor.ready()
            warm_up(env, client, pipeline_worker)
            prime_gateway(env, primer)

            def phase(name: str, n: int) -> dict[str, float]:
                if name == "queue":
                    return queue_floor(env, client, noop_worker, count)
                if name == "worker":
                    return call_floor(client, noop_worker, count)
                if name in floors:
                    return floors[name].go(env.gateway_pid(), last=n == rounds - 1)
                env.gateway_reset()
                batch = run_copy(
                    env,
                    client,
                    pipeline_worker,
                    catalog(count, start=n * count),
                    count,
                    label=f"pipeline {n + 1}/{rounds}",
                    progress=progress,
                    profile=profile if n == 0 else None,
                )
                jobs.add(batch, env.gateway_stats())
                return {
                    "elapsed_s": batch.elapsed_s,
                    "cpu_s": batch.worker_cpu_s,
                    "gateway_cpu_s": batch.gateway_cpu_s,
                }

            for n in range(rounds):
                for name in PHASES if n % 2 == 0 else PHASES[::-1]:
                    runs[name].append(phase(name, n))
            rss = worker_peak_rss_mb(pipeline_worker)
        finally:
            client.close()
            # A run cut short leaves no floor behind (each exits after its last round already).
            for floor in [*floors.values(), *([primer] if primer is not None else [])]:
                floor.kill()

    med = {name: _median(found) for name, found in runs.items()}
    rate = {name: count / m["elapsed_s"] for name, m in med.items()}
    ratios = [
        count / p["elapsed_s"] / (count / f["elapsed_s"])
        for p, f in zip(runs["pipeline"], runs["litellm"], strict=True)
    ]
    ratio = statistics.median(ratios)
    rows = [
        _row(LABELS[name], count, med[name], [count / r["elapsed_s"] for r in runs[name]]) for name in PHASES
    ]
    per_round = ", ".join(f"{r * 100:.1f}%" for r in ratios)
    notes = [
        f"{rounds} rounds of every phase, interleaved (the order reversed every other round); each row is "
        f"the median of its {rounds} runs, with the range of its rate. Each round's pipeline writes "
        "copy for products of its own.",
        f"pipeline = {fmt(ratio * 100)}% of the litellm floor's rate, the median of each round's ratio "
        f"({per_round}); {fmt(rate['pipeline'] / rate['gateway'] * 100)}% of its own gateway client's; "
        "by CPU per call (steadier while other work shares the cores) "
        f"{fmt(med['litellm']['cpu_s'] / med['pipeline']['cpu_s'] * 100)}% of the floor.",
        f"worker floor (the Procfile's worker command on bench/noop_worker.py: each message one call "
        f"through the gateway client, nothing else) = {fmt(rate['worker'] / rate['litellm'] * 100)}% "
        f"of the litellm floor's rate; the pipeline = {fmt(rate['pipeline'] / rate['worker'] * 100)}% "
        f"of the worker floor's, {fmt(med['worker']['cpu_s'] / med['pipeline']['cpu_s'] * 100)}% "
        "by CPU per job.",
        "client floor: litellm is plain `litellm.acompletion` with litellm's default settings; "
        "the gateway client is `agents.gateway.GatewayClient`, litellm with the service's settings "
        "(what each setting is worth: section 1b).",
        f"{jobs.done} jobs done, {jobs.failed} failed; {jobs.model_calls} model calls reached "
        f"the gateway; worker peak RSS {fmt(rss, 0)} MB; "
        f"{threads} worker threads, the floors {threads} calls at a time.",
        "CPU ms/call is the process doing the work (the worker, or the floor's client process); "
        "the gateway's CPU is beside it, on the same two cores.",
    ]
    if jobs.other:
        notes.append(f"jobs neither done nor failed when the queue drained: {jobs.other}")
    if jobs.errors:
        notes.append("first errors: " + " | ".join(jobs.errors))
    notes.append(load_note())
    return Section(
        title=TITLE,
        command="python -m bench.overhead" + (" --quick" if quick else f" --count {count} --rounds {rounds}"),
        columns=["what", "n", "seconds", "per second", "range", "CPU ms / call", "gateway CPU ms / call"],
        rows=rows,
        notes=notes,
        verdicts=[
            (f"pipeline >= {TARGET:.0%} of the litellm floor ({ratio:.0%}, the median)", ratio >= TARGET)
        ],
    )


@dataclass
class Jobs:
    """The pipeline's rounds, added up: what became of its jobs and its model calls."""

    done: int = 0
    failed: int = 0
    model_calls: int = 0
    errors: list[str] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)

    def add(self, batch: Batch, stats: dict[str, Any]) -> None:
        self.done += batch.done
        self.failed += batch.failed
        self.model_calls += int(stats.get("model_calls") or 0)
        self.errors.extend(batch.errors[: max(0, 3 - len(self.errors))])
        for state, n in batch.other.items():
            self.other[state] = self.other.get(state, 0) + n


def _median(found: list[dict[str, float]]) -> dict[str, float]:
    """Each measure's median over the rounds (a floor without gateway CPU has none)."""
    keys = [k for k in ("elapsed_s", "cpu_s", "gateway_cpu_s") if k in found[0]]
    return {key: statistics.median(float(r[key]) for r in found) for key in keys}


def _row(what: str, n: int, m: dict[str, float], rates: list[float]) -> list[str]:
    gateway_cpu = m.get("gateway_cpu_s")
    return [
        what,
        str(n),
        fmt(m["elapsed_s"], 2),
        fmt(n / m["elapsed_s"]),
        f"{fmt(min(rates))} to {fmt(max(rates))}" if len(rates) > 1 else "",
        fmt(m["cpu_s"] / n * 1000, 2),
        "" if gateway_cpu is None else fmt(gateway_cpu / n * 1000, 2),
    ]


def print_profile(path: Path, limit: int = 25) -> None:
    from bench.profile import top_frames, top_self

    samples, rows = top_frames(path, limit)
    print(f"profile: {samples} samples of busy worker threads ({path})")
    print("  total%  self%  frame")
    for frame, self_pct, total_pct in rows:
        print(f"  {total_pct:6.1f} {self_pct:6.1f}  {frame}")
    print("  top self time:")
    for frame, pct in top_self(path, limit):
        print(f"  {pct:6.1f}  {frame}")


def main(argv: list[str] | None = None) -> Section:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__)
    parser.add_argument("--count", type=int, default=2000, help="jobs (and floor calls/messages)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="runs of every phase, interleaved")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 of each, one round")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the worker during the first round's pipeline run into this file"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.count < 1:
        parser.error(
            f"--rounds and --count must be at least 1 (got --rounds {args.rounds}, --count {args.count})"
        )
    quiet_driver_logs()
    count = 100 if args.quick else args.count
    section = run(count, rounds=1 if args.quick else args.rounds, quick=args.quick, profile=args.profile)
    section.print()
    if args.profile is not None:
        print_profile(args.profile)
    return section


if __name__ == "__main__":
    main()
