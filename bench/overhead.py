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

Every phase sends the same N request bodies, and the dev gateway is primed with them first
(untimed), so each phase finds it equally cheap: the gateway's CPU, Cloudflare's in
production, weighs the same on every row.

Target: the pipeline reaches at least 70% of the plain-litellm floor's rate.

`python -m bench.overhead [--count N] [--quick]`
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.catalog import catalog
from bench.client import Client
from bench.env import BenchEnv, procfile_command
from bench.report import Section, fmt, load_note, quiet_driver_logs
from bench.runs import (
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


def run(count: int, *, quick: bool = False, progress: bool = True, profile: Path | None = None) -> Section:
    threads = worker_threads()
    with BenchEnv(latency_ms=0) as env:
        client = Client(env.redis_url)
        try:
            # Everything boots at once (untimed); the timed phases then run one after another.
            pipeline_worker = env.start_worker("worker")
            noop_worker = env.start_worker("noop", noop_argv())
            floors = [FloorProcess(env, name, count, threads) for name in ("litellm", "gateway")]
            primer = FloorProcess(env, "gateway", count, threads)
            for floor in floors:
                floor.ready()
            warm_up(env, client, pipeline_worker)
            prime_gateway(env, primer)

            q = queue_floor(env, client, noop_worker, count)
            wf = call_floor(client, noop_worker, count)
            env.stop(noop_worker)
            results = {floor.name: floor.go(env.gateway_pid()) for floor in floors}

            env.gateway_reset()
            batch = run_copy(
                env,
                client,
                pipeline_worker,
                catalog(count),
                count,
                label="pipeline",
                progress=progress,
                profile=profile,
            )
            stats = env.gateway_stats()
            rss = worker_peak_rss_mb(pipeline_worker)
        finally:
            client.close()

    ll, gw = results["litellm"], results["gateway"]
    ratio = batch.rate / ll["rate"]
    rows = [
        _row("queue floor: Dramatiq no-op", count, q["elapsed_s"], q["cpu_s"], None),
        _row("worker floor: Dramatiq actor, one call", count, wf["elapsed_s"], wf["cpu_s"], None),
        _row("client floor: litellm", count, ll["elapsed_s"], ll["cpu_s"], ll["gateway_cpu_s"]),
        _row("client floor: gateway client", count, gw["elapsed_s"], gw["cpu_s"], gw["gateway_cpu_s"]),
        _row("pipeline: product copy", count, batch.elapsed_s, batch.worker_cpu_s, batch.gateway_cpu_s),
    ]
    notes = [
        f"pipeline = {fmt(ratio * 100)}% of the litellm floor's rate, "
        f"{fmt(batch.rate / gw['rate'] * 100)}% of its own gateway client's; by CPU per call (steadier "
        f"while other work shares the cores) {fmt(ll['cpu_s'] / batch.worker_cpu_s * 100)}% of the floor.",
        f"worker floor (the Procfile's worker command on bench/noop_worker.py: each message one call "
        f"through the gateway client, nothing else) = {fmt(count / wf['elapsed_s'] / ll['rate'] * 100)}% "
        f"of the litellm floor's rate; the pipeline = {fmt(batch.rate / (count / wf['elapsed_s']) * 100)}% "
        f"of the worker floor's, {fmt(wf['cpu_s'] / batch.worker_cpu_s * 100)}% by CPU per job.",
        "client floor: litellm is plain `litellm.acompletion` with litellm's default settings; "
        "the gateway client is `agents.gateway.GatewayClient`, litellm with the service's settings "
        "(what each setting is worth: section 1b).",
        f"{batch.done} jobs done, {batch.failed} failed; {stats.get('model_calls')} model calls reached "
        f"the gateway; worker peak RSS {fmt(rss, 0)} MB; "
        f"{threads} worker threads, the floors {threads} calls at a time.",
        "CPU ms/call is the process doing the work (the worker, or the floor's client process); "
        "the gateway's CPU is beside it, on the same two cores.",
    ]
    if batch.other:
        notes.append(f"jobs neither done nor failed when the queue drained: {batch.other}")
    if batch.errors:
        notes.append("first errors: " + " | ".join(batch.errors))
    notes.append(load_note())
    return Section(
        title=TITLE,
        command="python -m bench.overhead" + (" --quick" if quick else f" --count {count}"),
        columns=["what", "n", "seconds", "per second", "CPU ms / call", "gateway CPU ms / call"],
        rows=rows,
        notes=notes,
        verdicts=[(f"pipeline >= {TARGET:.0%} of the litellm floor ({ratio:.0%})", ratio >= TARGET)],
    )


def _row(what: str, n: int, seconds: float, cpu: float, gateway_cpu: float | None) -> list[str]:
    return [
        what,
        str(n),
        fmt(seconds, 2),
        fmt(n / seconds),
        fmt(cpu / n * 1000, 2),
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
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 of each")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the worker during the pipeline run into this file"
    )
    args = parser.parse_args(argv)
    quiet_driver_logs()
    count = 100 if args.quick else args.count
    section = run(count, quick=args.quick, profile=args.profile)
    section.print()
    if args.profile is not None:
        print_profile(args.profile)
    return section


if __name__ == "__main__":
    main()
