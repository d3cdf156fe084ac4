"""Benchmark: how soon the interactive lane picks up a message, and what an idle lane costs.

    python -m bench.pickup            # ~1.5 minutes
    python -m bench.pickup --json

Runs the Procfile's `interactive` line on a private valkey-server three times: with
Dramatiq's default idle poll (1,000 ms), with Dramatiq's own consumer given a 5 ms idle
timeout for this queue, and with the consumers sleeping until Redis announces a push (the
default, `pipelines/fastlane.py`, a redis-py PubSub subscription).
The first two have `CONFIG` denied to the workers' Redis user, which is how a managed Redis
that refuses it makes the lane fall back to polling. For each: the worker processes' CPU
while idle, then personalization requests (cache hits) sent one by one at random gaps, as a
quiet storefront sends them, from a plain Dramatiq client: pick-up (enqueue to the job
starting) and enqueue to published, p50 and p95.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.env import BenchEnv, procfile_command
from bench.report import pct
from bench.runs import cpu_s

HEARTBEATS = "dramatiq:__heartbeats__"
CANDIDATES = [{"id": f"p{n}", "title": f"Product {n}", "product_type": "Mugs"} for n in range(8)]


@dataclass(frozen=True)
class Mode:
    name: str
    env: dict[str, str]
    config_allowed: bool


MODES = [
    Mode("poll, Dramatiq's default (1,000 ms)", {"INTERACTIVE_POLL_MS": "1000"}, config_allowed=False),
    Mode("poll every 5 ms (Dramatiq's consumer)", {"INTERACTIVE_POLL_MS": "5"}, config_allowed=False),
    Mode("woken by a push (default)", {}, config_allowed=True),
]


def _wait_done(status: Any, job: str, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = status.get(job)
        if info and info.get("status") in ("done", "failed"):
            return dict(info)
        time.sleep(0.002)
    raise RuntimeError(f"job {job} did not finish in {timeout_s:g} s")


def measure(env: BenchEnv, mode: Mode, *, requests: int, idle_s: float, seed: int) -> dict[str, Any]:
    from dramatiq.brokers.redis import RedisBroker

    from pipelines.status import JobStatus
    from pipelines.submit import submit_personalize

    env.redis.execute_command("ACL", "SETUSER", "default", "+config" if mode.config_allowed else "-config")
    if mode.config_allowed:  # each mode starts from a server with keyspace events off
        env.redis.config_set("notify-keyspace-events", "")
    before = set(env.redis.zrange(HEARTBEATS, 0, -1))
    command = procfile_command("interactive")
    processes = int(command[command.index("--processes") + 1])
    child = env.start_worker("interactive", command, mode.env)
    try:
        deadline = time.monotonic() + 90
        while len(set(env.redis.zrange(HEARTBEATS, 0, -1)) - before) < processes:
            if time.monotonic() > deadline or child.proc.poll() is not None:
                raise RuntimeError(f"interactive worker did not start; see {child.log_path}")
            time.sleep(0.05)
        # A plain Dramatiq client, as the storefront's would be: nothing of this project's broker.
        broker = RedisBroker(url=env.redis_url)
        status = JobStatus(env.redis)
        context = {"segment": "pickup", "candidates": CANDIDATES}

        def send(n: int) -> dict[str, Any]:
            job = submit_personalize(broker, status, "pickup-bench", f"shopper-{n}", context)
            return _wait_done(status, job)

        for n in range(8):  # warm both processes up; the first fills the cohort's cache
            info = send(n)
            if info["status"] != "done":
                raise RuntimeError(f"warm-up job failed: {info}")
        time.sleep(1.0)
        pids = child.worker_pids()
        cpu0, t0 = cpu_s(pids), time.monotonic()
        time.sleep(idle_s)
        idle_cores = (cpu_s(pids) - cpu0) / (time.monotonic() - t0)

        rng = random.Random(seed)
        pickups, published = [], []
        for n in range(requests):
            time.sleep(rng.uniform(0.02, 0.1))
            info = send(100 + n)
            if info["status"] != "done":
                raise RuntimeError(f"job failed: {info}")
            pickups.append((info["started_at"] - info["created_at"]) * 1000)
            done_at = float(info.get("published_at") or info["finished_at"])
            published.append((done_at - info["created_at"]) * 1000)
        return {
            "mode": mode.name,
            "processes": processes,
            "idle_cpu_pct_of_a_core": round(idle_cores * 100, 1),
            "pickup_ms": {f"p{q}": round(pct(pickups, q), 2) for q in (50, 95)},
            "published_ms": {f"p{q}": round(pct(published, q), 2) for q in (50, 95)},
            "requests": requests,
        }
    finally:
        env.stop(child)
        env.redis.execute_command("ACL", "SETUSER", "default", "+config")


def table(results: list[dict[str, Any]]) -> str:
    base = next(r for r in results if "5 ms" in r["mode"])
    lines = [
        "| idle consumer | idle CPU, % of a core | pick-up p50 ms | p95 ms "
        "| enqueue to published p50 ms | p95 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['mode']} | {r['idle_cpu_pct_of_a_core']} | {r['pickup_ms']['p50']:.2f} | "
            f"{r['pickup_ms']['p95']:.2f} | {r['published_ms']['p50']:.2f} | {r['published_ms']['p95']:.2f} |"
        )
    push = results[-1]
    ratio = push["pickup_ms"]["p50"] / base["pickup_ms"]["p50"] if base["pickup_ms"]["p50"] else 0.0
    lines.append("")
    lines.append(
        f"{push['requests']} cache-hit requests per mode, sent one at a time 20-100 ms apart by a plain "
        f"Dramatiq client, to the Procfile's interactive line ({push['processes']} processes). "
        f"Woken by a push against polling every 5 ms: pick-up p50 x{ratio:.2f}, idle CPU "
        f"{push['idle_cpu_pct_of_a_core']}% against {base['idle_cpu_pct_of_a_core']}% of a core."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pickup",
        description="Benchmark: the interactive lane's pick-up time and idle cost, "
        "polling against woken by a push.",
    )
    parser.add_argument("--requests", type=int, default=150, help="requests per mode")
    parser.add_argument("--idle-s", type=float, default=5.0, help="seconds of idle CPU measured per mode")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    results = []
    with BenchEnv() as env:
        # Before anything imports `pipelines.broker`, which connects where REDIS_URL says.
        os.environ["REDIS_URL"] = env.redis_url
        for mode in MODES:
            print(f"measuring: {mode.name} ...", file=sys.stderr, flush=True)
            results.append(measure(env, mode, requests=args.requests, idle_s=args.idle_s, seed=args.seed))
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
