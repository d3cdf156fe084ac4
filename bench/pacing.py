"""Benchmark 8, pacing: a 1,000-product catalog copy against a provider enforcing RPM and TPM.

The dev gateway plays a provider limiting `gpt-4o-mini` to `--rpm` requests and `--tpm` tokens
a minute (token buckets with 3 s of burst, 429 with `retry-after` past them). The Procfile's
worker copies `--count` distinct products (every one a fresh generation) with the same limits in
MODEL_LIMITS, so its calls wait for their slot in the shared budget instead of being refused.
Reported: completion time against the physical limit, max(calls / RPM, tokens / TPM), where
tokens are what the provider charged (prompt + `max_tokens`, as OpenAI counts them), and the
calls answered 429. Targets: within 110% of the limit, fewer than 1% of calls 429.
With `--compare`, the same run without MODEL_LIMITS (learning the limit from 429s) beside it.

Settings named: MODEL_LIMIT_INTERACTIVE_SHARE=0 (a catalog run alone; with the default 0.2 the
batch lane takes 80% of the budget, by design), gateway latency `--latency-ms`.

`python -m bench.pacing [--count N] [--rpm N] [--tpm N] [--latency-ms N] [--compare] [--quick]`
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from bench.catalog import catalog
from bench.client import Client
from bench.env import BenchEnv
from bench.report import Section, fmt, load_note, quiet_driver_logs
from bench.runs import Batch, run_copy, warm_up

TITLE = "9. Pacing to provider limits: a 1,000-product catalog copy at the provider's RPM and TPM"
MODEL = "gpt-4o-mini"
RATIO_TARGET = 1.10
LIMITED_TARGET = 0.01
# The provider's burst (OpenAI's buckets hold about a minute); the fleet's own is
# MODEL_LIMIT_BURST_S (1 s): a smaller one, so arrival jitter does not meet a 429.
GATEWAY_BURST_S = 3.0
# 1,000 products in ~75 s: both limits bind about equally (a call is ~2,360 tokens: prompt + max_tokens).
COUNT, RPM, TPM = 1000, 800, 1_850_000


@dataclass
class Run:
    """One catalog run against the limited gateway."""

    label: str
    batch: Batch
    stats: dict[str, Any]
    rpm: int
    tpm: int

    @property
    def limit_s(self) -> float:
        """The physical limit: the provider's budget cannot pass the calls and tokens any faster."""
        calls = self.stats["limited_requests"]
        return max(calls / self.rpm, self.stats["limited_tokens"] / self.tpm) * 60

    @property
    def ratio(self) -> float:
        return self.batch.elapsed_s / self.limit_s if self.limit_s else 0.0

    @property
    def answered_429(self) -> int:
        return int(self.stats["by_status"].get("429", 0))

    @property
    def share_429(self) -> float:
        requests = int(self.stats["requests"])
        return self.answered_429 / requests if requests else 0.0


def one_run(
    label: str, count: int, rpm: int, tpm: int, latency_ms: int, paced: bool, progress: bool, cpu_policy: str
) -> Run:
    limits = {MODEL: {"rpm": rpm, "tpm": tpm}}
    extra = {"MODEL_LIMIT_INTERACTIVE_SHARE": "0", "BATCH_CPU_POLICY": cpu_policy}
    if paced:
        extra["MODEL_LIMITS"] = json.dumps(limits)
    with BenchEnv(latency_ms=latency_ms) as env:
        client = Client(env.redis_url)
        try:
            worker = env.start_worker("worker", extra_env=extra)
            warm_up(env, client, worker)
            # The provider's limits start now, on a clean slate: the warm-up is not counted.
            env.gateway_reset()
            env.gateway_config(latency_ms=latency_ms, rate_limits=limits, burst_s=GATEWAY_BURST_S)
            env.redis.delete(*(env.redis.keys("wandstore:rl:*") or ["-"]))
            batch = run_copy(env, client, worker, catalog(count), count, label=label, progress=progress)
            stats = env.gateway_stats()
        finally:
            client.close()
    return Run(label, batch, stats, rpm, tpm)


def run(
    count: int = COUNT,
    rpm: int = RPM,
    tpm: int = TPM,
    latency_ms: int = 300,
    *,
    compare: bool = False,
    quick: bool = False,
    progress: bool = True,
    cpu_policy: str = "idle",
) -> Section:
    args = (count, rpm, tpm, latency_ms)
    runs = [one_run("paced (MODEL_LIMITS set)", *args, True, progress, cpu_policy)]
    if compare:
        runs.append(one_run("not paced (429s only)", *args, False, progress, cpu_policy))
    rows = [
        [
            r.label,
            f"{r.batch.done:,}/{r.batch.count:,}",
            fmt(r.batch.elapsed_s, 1),
            fmt(r.limit_s, 1),
            f"{r.ratio * 100:.0f}%",
            f"{r.stats['limited_requests']:,}",
            f"{r.stats['limited_tokens']:,}",
            f"{r.answered_429:,} ({r.share_429 * 100:.2f}%)",
            fmt(r.batch.worker_cpu_s / r.batch.elapsed_s, 2),
        ]
        for r in runs
    ]
    paced = runs[0]
    binding = (
        "requests"
        if paced.stats["limited_requests"] / rpm >= paced.stats["limited_tokens"] / tpm
        else "tokens"
    )
    notes = [
        f"provider limits on {MODEL}: {rpm:,} requests and {tpm:,} tokens a minute, "
        f"{GATEWAY_BURST_S:.0f} s of burst (the fleet's own: MODEL_LIMIT_BURST_S, 1 s); "
        f"the binding one here: {binding}. Gateway latency {latency_ms} ms; the Procfile's worker.",
        "the limit counts what the provider let through (tokens: prompt + max_tokens, as OpenAI "
        "charges at request time); completion time is from the first submission to the last job done.",
        f"BATCH_CPU_POLICY={cpu_policy}. MODEL_LIMIT_INTERACTIVE_SHARE=0: a catalog run alone; "
        "with the default 0.2 the batch lane is "
        "held to 80% of the budget and the rest waits for the storefront.",
    ]
    for r in runs:
        if r.batch.errors:
            notes.append(f"{r.label}: first errors: " + " | ".join(r.batch.errors))
    notes.append(load_note())
    flags = "" if not quick else " --quick"
    flags += f" --count {count} --rpm {rpm} --tpm {tpm} --latency-ms {latency_ms} --cpu-policy {cpu_policy}"
    return Section(
        title=TITLE,
        command="python -m bench.pacing" + flags + (" --compare" if compare else ""),
        columns=[
            "run",
            "done",
            "seconds",
            "physical limit (s)",
            "time / limit",
            "calls let through",
            "tokens let through",
            "answered 429",
            "worker CPU s / s",
        ],
        rows=rows,
        notes=notes,
        verdicts=[
            (
                f"within {RATIO_TARGET * 100:.0f}% of the limit ({paced.ratio * 100:.0f}%)",
                paced.ratio <= RATIO_TARGET,
            ),
            (
                f"fewer than {LIMITED_TARGET * 100:.0f}% of calls 429 ({paced.share_429 * 100:.2f}%)",
                paced.share_429 < LIMITED_TARGET,
            ),
            (f"every product done ({paced.batch.done:,} of {count:,})", paced.batch.done == count),
        ],
    )


def main(argv: list[str] | None = None) -> Section:
    parser = argparse.ArgumentParser(prog="python -m bench.pacing", description=__doc__)
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--rpm", type=int, default=RPM)
    parser.add_argument("--tpm", type=int, default=TPM)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--compare", action="store_true", help="also run without MODEL_LIMITS")
    parser.add_argument(
        "--cpu-policy",
        default="idle",
        choices=["idle", "batch", "normal"],
        help="BATCH_CPU_POLICY of the worker (normal on a machine busy with other work)",
    )
    parser.add_argument("--quick", action="store_true", help="100 products at half the limits")
    args = parser.parse_args(argv)
    quiet_driver_logs()
    if args.quick:
        args.count, args.rpm, args.tpm = 100, args.rpm // 2, args.tpm // 2
    section = run(
        args.count,
        args.rpm,
        args.tpm,
        args.latency_ms,
        compare=args.compare,
        quick=args.quick,
        cpu_policy=args.cpu_policy,
    )
    section.print()
    return section


if __name__ == "__main__":
    main()
