"""What litellm's settings are worth: bare `litellm.acompletion`, with and without each one.

One dev gateway (no added latency); one client process per variant, each started before any
is timed (imports and the first calls untimed), then run in turns, round after round, so every
variant meets the same machine. Each sends the same product-copy requests from one event
loop, as many at once as the worker has threads.

- **litellm defaults**: the floor `bench.overhead` holds the pipeline to: plain
  `litellm.acompletion` with litellm's module settings untouched (only the offline
  environment of `agents/_litellm.py`, which changes no per-call work);
- one row per setting, that setting alone on the defaults: the service's
  (`agents._litellm.SETTINGS`) and the candidates below, tried for turning off work the
  service does not use and left out (each row says why);
- **the service's settings**: litellm as `agents._litellm.litellm()` configures it.

`python -m bench.litellm_settings [--count N] [--rounds R] [--quick]`; `make bench` puts it in
bench/RESULTS.md (section 1b).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from agents._litellm import Setting
from bench.env import ROOT, BenchEnv
from bench.report import Section, fmt, load_note, quiet_driver_logs
from bench.runs import worker_threads

TITLE = "1b. litellm's settings: bare acompletion with and without each (zero-latency gateway)"
DEFAULTS = "litellm defaults"
SERVICE = "the service's settings"
# Switches for work the service does not use, measured and not applied.
CANDIDATES = (
    Setting(
        "turn_off_message_logging",
        True,
        "redacts messages and responses from the logging payload, which is built anyway: "
        "one more deep copy per call",
    ),
    Setting(
        "disable_token_counter",
        True,
        "litellm counts no tokens itself; it counts none on a call whose usage the provider reports",
    ),
    Setting(
        "disable_end_user_cost_tracking",
        True,
        "end-user cost tracking is the proxy's; nothing on the SDK path reads it",
    ),
    Setting(
        "disable_aiohttp_transport",
        True,
        "httpx's transport instead of aiohttp's (the default, and the session the service passes)",
    ),
)


def settings() -> dict[str, Setting]:
    from agents._litellm import SETTINGS

    return {s.code: s for s in (*SETTINGS, *CANDIDATES)}


def variants() -> list[str]:
    return [DEFAULTS, *settings(), SERVICE]


def configure(variant: str) -> Any:
    """litellm for `variant`, in this (child) process."""
    from agents import _litellm

    if variant == SERVICE:
        return _litellm.litellm()
    ll = _litellm.bare_litellm()
    if variant != DEFAULTS:
        settings()[variant].apply(ll)
    return ll


async def _child(variant: str, base_url: str, count: int, concurrency: int) -> None:
    from bench.floors import _drive, requests

    ll = configure(variant)
    reqs = requests(count)
    headers = {"cf-aig-metadata": json.dumps({"store": "bench", "pipeline": "settings"})}

    def call(req: dict[str, Any]) -> Any:
        return lambda: ll.acompletion(
            **req,
            api_base=f"{base_url}/openai",
            api_key="gateway-managed",
            extra_headers=headers,
            timeout=60,
            num_retries=0,
            max_retries=0,
        )

    await _drive([call(r) for r in reqs[:8]], 8)
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go":
        cpu = time.process_time()
        elapsed, errors = await _drive([call(r) for r in reqs], concurrency)
        cpu_s = time.process_time() - cpu
        print(json.dumps({"elapsed_s": elapsed, "cpu_s": cpu_s, "errors": errors}), flush=True)


class Child:
    def __init__(self, env: BenchEnv, variant: str, count: int, concurrency: int) -> None:
        argv = [sys.executable, "-m", "bench.litellm_settings", "--child", variant]
        argv += ["--base-url", env.gateway_base, "--count", str(count), "--concurrency", str(concurrency)]
        self.variant = variant
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env.env(), text=True
        )

    def ready(self) -> None:
        assert self.proc.stdout is not None
        if (line := self.proc.stdout.readline().strip()) != "ready":
            raise RuntimeError(f"{self.variant}: did not start ({line!r})")

    def go(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run(count: int, rounds: int, *, quick: bool = False) -> Section:
    threads = worker_threads()
    names = variants()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with BenchEnv(latency_ms=0) as env:
        children = [Child(env, name, count, threads) for name in names]
        try:
            for child in children:
                child.ready()
            for r in range(rounds):
                # A different variant goes first each round: none always follows the same one.
                for child in children[r % len(children) :] + children[: r % len(children)]:
                    runs[child.variant].append(child.go())
        finally:
            for child in children:
                child.close()
    base = _medians(runs[DEFAULTS], count)
    rows = []
    for name in names:
        rate, cpu = _medians(runs[name], count)
        rates = [count / x["elapsed_s"] for x in runs[name]]
        rows.append(
            [
                name if name in (DEFAULTS, SERVICE) else f"`{name}`",
                fmt(rate),
                f"{fmt(min(rates))} to {fmt(max(rates))}",
                f"{(rate / base[0] - 1) * 100:+.0f}%",
                fmt(cpu, 2),
                f"{cpu - base[1]:+.2f}",
            ]
        )
    errors = sum(x["errors"] for xs in runs.values() for x in xs)
    applied = {s.code for s in settings().values() if s not in CANDIDATES}
    notes = [
        f"{count} calls per run, {threads} at a time from one event loop; the median of {rounds} runs "
        "per variant, all variants' runs taken in turns (the range is the lowest and highest run); "
        f"{errors} calls failed.",
        "CPU ms / call is the client process's, all its threads; the gateway's is not counted.",
        *(
            f"`{code}` ({'applied' if code in applied else 'not applied'}): {s.why}."
            for code, s in settings().items()
        ),
        load_note(),
    ]
    return Section(
        title=TITLE,
        command="python -m bench.litellm_settings"
        + (" --quick" if quick else f" --count {count} --rounds {rounds}"),
        columns=["litellm", "calls / s", "range", "vs defaults", "CPU ms / call", "vs defaults"],
        rows=rows,
        notes=notes,
    )


def _medians(runs: list[dict[str, Any]], count: int) -> tuple[float, float]:
    """(calls per second, CPU ms per call), each the median over `runs`."""
    rate = statistics.median(count / x["elapsed_s"] for x in runs)
    return rate, statistics.median(x["cpu_s"] for x in runs) / count * 1000


def main(argv: list[str] | None = None) -> Section | None:
    parser = argparse.ArgumentParser(prog="python -m bench.litellm_settings", description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="calls per run")
    parser.add_argument("--rounds", type=int, default=5, help="runs per variant")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 calls, 2 rounds")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=256, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(_child(args.child, args.base_url, args.count, args.concurrency))
        return None
    quiet_driver_logs()
    count, rounds = (100, 2) if args.quick else (args.count, args.rounds)
    section = run(count, rounds, quick=args.quick)
    section.print()
    return section


if __name__ == "__main__":
    main()
