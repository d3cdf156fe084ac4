"""Benchmark 2, concurrency: 2,000 product-copy jobs, a gateway that takes 2 s per call, one worker.

The worker is the Procfile's (`--processes 2 --threads 128`, async actors). While the jobs run,
the dev gateway counts the calls it holds at once (`in_flight`), and the worker's resident
memory is sampled. Targets (issue 15, on this project's 2-core hosts): at least 256 calls in
flight; throughput at least 60% of in-flight / latency (what that concurrency could carry if
nothing but the call took time); peak RSS under 1 GB.
(Dramatiq's default 8 threads would carry 8 / 2 s = 4 jobs/s.) The dev gateway is primed with
the same requests first, untimed, so the pipeline and its floor find it equally cheap.

`python -m bench.concurrency [--count N] [--latency-ms L] [--quick]`
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from bench.catalog import catalog
from bench.client import Client
from bench.env import BenchEnv
from bench.report import Section, fmt, load_note, pct, quiet_driver_logs
from bench.runs import (
    FloorProcess,
    prime_gateway,
    run_copy,
    start_worker,
    worker_peak_rss_mb,
    worker_processes,
    worker_rss_mb,
    worker_threads,
)

TITLE = "2. Concurrency: the Procfile's worker, 2 s per model call"
TARGET = 0.60


class Sampler(threading.Thread):
    """Every 100 ms: the gateway's calls in flight and the worker's RSS."""

    def __init__(self, env: BenchEnv, worker: object) -> None:
        super().__init__(daemon=True)
        self.env, self.worker = env, worker
        self.in_flight: list[int] = []
        self.rss: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.in_flight.append(int(self.env.gateway_stats()["in_flight"]))
                self.rss.append(worker_rss_mb(self.worker))  # type: ignore[arg-type]
            except Exception:  # a sample lost to a busy machine is not a result
                continue


def run(
    count: int, latency_ms: int, *, quick: bool = False, progress: bool = True, profile: Path | None = None
) -> Section:
    threads = worker_threads()
    latency_s = latency_ms / 1000
    with BenchEnv(latency_ms=latency_ms) as env:
        client = Client(env.redis_url)
        try:
            primer = FloorProcess(env, "gateway", count, threads)
            worker = start_worker(env, client)
            prime_gateway(env, primer)  # the pipeline and the floor find it equally cheap
            env.gateway_reset()
            env.gateway_config(latency_ms=latency_ms)
            rss_before = worker_rss_mb(worker)
            sampler = Sampler(env, worker)
            sampler.start()
            batch = run_copy(
                env, client, worker, catalog(count), count, label="jobs", progress=progress, profile=profile
            )
            sampler.stop.set()
            sampler.join()
            run_times = client.run_times(batch.job_ids)
            stats = env.gateway_stats()
            peak_rss = worker_peak_rss_mb(worker)
            env.stop(worker)
            floor = worker_floor(env, client, count, latency_ms, progress=progress)
        finally:
            client.close()

    peak = int(stats["peak_in_flight"])
    # Steady state: the samples while at least half the peak was in flight (ramp-up and the
    # last partial wave left out).
    busy = [n for n in sampler.in_flight if n >= peak / 2] or [0]
    mean_busy = sum(busy) / len(busy)
    capacity = peak / latency_s
    share = batch.rate / capacity if capacity else 0.0
    floor_share = floor["rate"] / capacity if capacity else 0.0
    rows = [
        ["jobs", str(batch.count)],
        ["gateway latency (s)", fmt(latency_s, 1)],
        ["worker threads (Procfile)", str(threads)],
        ["calls in flight, peak", str(peak)],
        ["calls in flight, mean while busy", fmt(mean_busy)],
        ["seconds", fmt(batch.elapsed_s, 2)],
        ["throughput (jobs/s)", fmt(batch.rate)],
        ["in-flight / latency (jobs/s)", fmt(capacity)],
        ["throughput / (in-flight / latency)", f"{share:.0%}"],
        ["floor: bare Dramatiq actor, one call, nothing else (jobs/s)", fmt(floor["rate"])],
        ["floor / (in-flight / latency)", f"{floor_share:.0%}"],
        ["pipeline / floor", f"{batch.rate / floor['rate']:.0%}" if floor["rate"] else "n/a"],
        ["worker CPU ms / job", fmt(batch.worker_cpu_s / batch.count * 1000, 2)],
        [
            "job run time, start to end, p50 / p95 (s)",
            f"{fmt(pct(run_times, 50), 2)} / {fmt(pct(run_times, 95), 2)}",
        ],
        ["worker RSS before (MB)", fmt(rss_before, 0)],
        ["worker peak RSS (MB)", fmt(peak_rss, 0)],
    ]
    notes = [
        f"{batch.done} jobs done, {batch.failed} failed; {stats['model_calls']} model calls.",
        f"The floor is the same worker command on a bare Dramatiq module (bench/noop_worker.py) whose "
        f"actor sends the same {count} chat requests through the pipeline's gateway client and does "
        "nothing else "
        f"(peak {floor['peak']} in flight, {fmt(floor['cpu_ms'], 2)} CPU ms/job): what one process of "
        "this machine carries at this latency before any pipeline work.",
        "The last wave of a batch is partial (2,000 jobs are 7.8 waves of 256), so even a worker "
        "with no overhead of its own would reach ~98% here.",
    ]
    if run_times:
        mean_run = sum(run_times) / len(run_times)
        held = threads * worker_processes()
        notes.append(
            f"A job holds its worker thread for its whole run: {fmt(mean_run, 2)} s on average here, for "
            f"a {fmt(latency_s, 1)} s call, so {held} threads carry at most {fmt(held / mean_run)} jobs/s. "
            "The time beyond the call is the job's own steps (Redis, litellm's set-up, the draft) "
            "waiting for CPU while a wave is worked through."
        )
    timeline = sampler.in_flight[:: max(1, len(sampler.in_flight) // 40)]
    notes.append(
        "calls in flight every ~{:.1f} s: {}".format(
            len(sampler.in_flight) / 10 / max(len(timeline), 1), " ".join(map(str, timeline))
        )
    )
    if share < 0.95:
        cpu_ms = batch.worker_cpu_s / batch.count * 1000
        notes.append(
            f"Why not 100%: the floor, the same command doing nothing but the call, reaches "
            f"{floor_share:.0%} of 128/s here: Dramatiq holds a thread per running job, and one "
            "process's threads, event loop and HTTP client share one GIL on two cores that the gateway, "
            f"Redis and the driver also use. The pipeline adds its own work on top: {fmt(cpu_ms, 1)} ms of "
            f"CPU per job against the floor's {fmt(floor['cpu_ms'], 1)} (where it goes: section 2b). "
            "With a fixed latency the calls come back in waves of 256; working through a wave "
            "delays the next calls, so calls in flight dip between waves (the timeline above)."
        )
    if batch.other:
        notes.append(f"jobs neither done nor failed when the queue drained: {batch.other}")
    if batch.errors:
        notes.append("first errors: " + " | ".join(batch.errors))
    want_in_flight = min(256, batch.count)
    notes.append(load_note())
    return Section(
        title=TITLE,
        command="python -m bench.concurrency" + (" --quick" if quick else ""),
        columns=["measure", "value"],
        rows=rows,
        notes=notes,
        verdicts=[
            (f">= {want_in_flight} calls in flight ({peak})", peak >= want_in_flight),
            (f"throughput >= {TARGET:.0%} of in-flight/latency ({share:.0%})", share >= TARGET),
            (f"peak RSS < 1 GB ({fmt(peak_rss, 0)} MB)", peak_rss < 1024),
        ],
    )


def worker_floor(
    env: BenchEnv, client: Client, count: int, latency_ms: int, *, progress: bool = True
) -> dict[str, float]:
    """Throughput of the Procfile's worker command on `bench_call` (one model call per message)."""
    from bench.overhead import call_floor, noop_argv

    worker = env.start_worker("floor", noop_argv())
    try:
        env.gateway_config(latency_ms=0)  # warm-up answers at once; then the latency under test

        def at_latency() -> None:
            env.gateway_reset()
            env.gateway_config(latency_ms=latency_ms)

        timed = call_floor(client, worker, count, before_timing=at_latency)
        stats = env.gateway_stats()
        return {
            "rate": count / timed["elapsed_s"],
            "peak": float(stats["peak_in_flight"]),
            "cpu_ms": timed["cpu_s"] / count * 1000,
        }
    finally:
        env.stop(worker)


def main(argv: list[str] | None = None) -> Section:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 300 jobs, 500 ms latency")
    parser.add_argument("--profile", type=Path, help="py-spy the worker into this file")
    args = parser.parse_args(argv)
    quiet_driver_logs()
    count, latency = (300, 500) if args.quick else (args.count, args.latency_ms)
    started = time.monotonic()
    section = run(count, latency, quick=args.quick, profile=args.profile)
    section.print()
    if args.profile is not None:
        from bench.overhead import print_profile

        print_profile(args.profile)
    print(f"({time.monotonic() - started:.0f} s)")
    return section


if __name__ == "__main__":
    main()
