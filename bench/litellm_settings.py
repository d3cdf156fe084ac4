"""What litellm's settings are worth: bare `litellm.acompletion`, with and without each one.

One dev gateway (no added latency), one `bench.floors litellm` process per variant, all set up
before any is timed, then run in turns, round after round: litellm's defaults (the floor
`bench.overhead` holds the pipeline to), each setting alone on them (the service's
`agents._litellm.SETTINGS` and the `CANDIDATES` left out), and all of the service's.

`python -m bench.litellm_settings [--count N] [--rounds R] [--quick]`; `make bench` writes it
to bench/RESULTS.md (section 1b).
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from agents._litellm import SETTINGS
from bench.env import BenchEnv
from bench.report import Section, fmt, load_note, quiet_driver_logs
from bench.runs import FloorProcess, worker_threads

TITLE = "1b. litellm's settings: bare acompletion with and without each (zero-latency gateway)"
DEFAULTS, SERVICE = "defaults", "service"
# Switches for work the service does not use, measured and left out: what each would change.
CANDIDATES = {
    "turn_off_message_logging": "redacts messages from the logging payload, which is built anyway",
    "disable_token_counter": "litellm counts no tokens on a call whose usage the provider reports",
    "disable_end_user_cost_tracking": "the proxy's end-user spend; nothing on the SDK path",
    "disable_aiohttp_transport": "httpx's transport instead of aiohttp's, the default",
}
BY_CODE = {f"litellm.{k} = {v!r}": (k, v) for k, v in {**SETTINGS, **dict.fromkeys(CANDIDATES, True)}.items()}


def configured(variant: str | None) -> Any:
    """litellm for a variant, in a floor process: its defaults, one setting on them, or the service's."""
    from agents import _litellm

    if variant == SERVICE:
        return _litellm.litellm()
    _litellm.prepare_offline_env()
    import litellm as ll

    if variant and variant != DEFAULTS:
        setattr(ll, *BY_CODE[variant])
    return ll


def run(count: int, rounds: int, *, quick: bool = False) -> Section:
    threads = worker_threads()
    names = [DEFAULTS, *BY_CODE, SERVICE]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with BenchEnv(latency_ms=0) as env:
        floors = [FloorProcess(env, "litellm", count, threads, setting=name) for name in names]
        try:
            for floor in floors:
                floor.ready()
            for r in range(rounds):
                # Each round starts with a different variant: none always runs after the same one.
                for floor in floors[r % len(floors) :] + floors[: r % len(floors)]:
                    runs[floor.name].append(floor.go(env.gateway_pid(), last=r == rounds - 1))
        finally:
            for floor in floors:
                floor.kill()
    base_rate, base_cpu = _medians(runs[DEFAULTS])
    rows = []
    for name in names:
        rate, cpu = _medians(runs[name])
        rates = [x["rate"] for x in runs[name]]
        label = {DEFAULTS: "litellm defaults", SERVICE: "the service's settings"}.get(name, f"`{name}`")
        rows.append(
            [
                label,
                fmt(rate),
                f"{fmt(min(rates))} to {fmt(max(rates))}",
                f"{(rate / base_rate - 1) * 100:+.0f}%",
                fmt(cpu, 2),
                f"{cpu - base_cpu:+.2f}",
            ]
        )
    errors = sum(x["errors"] for xs in runs.values() for x in xs)
    return Section(
        title=TITLE,
        command="python -m bench.litellm_settings"
        + (" --quick" if quick else f" --count {count} --rounds {rounds}"),
        columns=["litellm", "calls / s", "range", "vs defaults", "CPU ms / call", "vs defaults"],
        rows=rows,
        notes=[
            f"{count} calls a run, {threads} at a time from one event loop placed like the batch worker; the "
            f"median of {rounds} runs a variant, all variants' runs taken in turns; {errors} calls failed.",
            "CPU ms / call is the client process's, all its threads; the gateway's is not counted.",
            "Applied (agents/_litellm.py): "
            + ", ".join(f"`{code}`" for code, (name, _) in BY_CODE.items() if name in SETTINGS)
            + "; they change behaviour, not cost. Measured and left out: "
            + "; ".join(f"`{name}` ({why})" for name, why in CANDIDATES.items())
            + ".",
            load_note(),
        ],
    )


def _medians(runs: list[dict[str, Any]]) -> tuple[float, float]:
    """(calls per second, CPU ms per call), each the median over `runs`."""
    cpu = statistics.median(x["cpu_s"] / x["count"] * 1000 for x in runs)
    return statistics.median(x["rate"] for x in runs), cpu


def main(argv: list[str] | None = None) -> Section:
    parser = argparse.ArgumentParser(prog="python -m bench.litellm_settings", description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="calls a run")
    parser.add_argument("--rounds", type=int, default=5, help="runs a variant")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100 calls, 2 rounds")
    args = parser.parse_args(argv)
    quiet_driver_logs()
    count, rounds = (100, 2) if args.quick else (args.count, args.rounds)
    section = run(count, rounds, quick=args.quick)
    section.print()
    return section


if __name__ == "__main__":
    main()
