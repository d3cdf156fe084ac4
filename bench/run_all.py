"""`make bench`: every benchmark, one after another, then `bench/RESULTS.md` regenerated.

`python -m bench.run_all [--quick] [--only overhead,concurrency,...]`; `--quick` runs the smoke
versions and leaves RESULTS.md alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench import concurrency, cost, fairness, litellm_settings, overhead, scale, storefront_day, where
from bench.env import ROOT
from bench.report import RESULTS, Section, console, quiet_driver_logs, write_results

PERSONALIZATION_TITLE = "3. Interactive under load: personalization"
TRACING_TITLE = "7. Tracing: the spans of a job, endpoint unset and set"
DRAFTS_TITLE = "8. Drafts: what review adds to a copy job"
PICKUP_TITLE = "3c. The interactive lane idle: pick-up time and CPU, polling against woken by a push"


@dataclass
class Markdown:
    """A section another benchmark already rendered as Markdown."""

    title: str
    command: str
    body: str

    ok = True

    def print(self) -> None:
        console.print(self.body, highlight=False)

    def markdown(self) -> str:
        return f"## {self.title}\n\n`{self.command}`\n\n{self.body.rstrip()}\n"


def _in_own_process(title: str, module: str, args: list[str]) -> Markdown:
    """A benchmark that prints its own Markdown, run as `python -m module args` (these point
    `pipelines.broker`, a module-level broker, at their own Redis)."""
    argv = [sys.executable, "-m", module, *args]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        body = f"did not run (exit {done.returncode}):\n\n```\n{done.stderr[-2000:]}\n```"
    else:
        body = done.stdout
    return Markdown(title, " ".join(["python", *argv[1:]]), body)


def personalization(quick: bool) -> Markdown | None:
    """The personalization benchmark (issue 5's `bench/personalization.py`), when it exists."""
    if importlib.util.find_spec("bench.personalization") is None:
        return None
    return _in_own_process(PERSONALIZATION_TITLE, "bench.personalization", ["--quick"] if quick else [])


def pickup(quick: bool) -> Markdown:
    """The interactive lane's pick-up time and idle cost (`bench/pickup.py`)."""
    args = ["--requests", "30", "--idle-s", "2"] if quick else []
    return _in_own_process(PICKUP_TITLE, "bench.pickup", args)


def tracing_cost(quick: bool) -> Markdown:
    """What the spans of a job cost, with OTEL_EXPORTER_OTLP_ENDPOINT unset and set (`bench/tracing.py`)."""
    return _in_own_process(TRACING_TITLE, "bench.tracing", ["--jobs", "2000" if quick else "20000"])


def drafts_cost(quick: bool) -> Markdown:
    """What writing a draft first costs a copy job, auto and review, and an approval (`bench/drafts.py`)."""
    return _in_own_process(DRAFTS_TITLE, "bench.drafts", ["--products", "200" if quick else "2000"])


def pacing_section(quick: bool) -> Section:
    """A catalog run paced to a provider's RPM and TPM (`bench/pacing.py`): time against the limit, 429s."""
    from bench import pacing

    if quick:
        return pacing.run(100, pacing.RPM // 2, pacing.TPM // 2, quick=True, progress=False)
    return pacing.run(pacing.COUNT, pacing.RPM, pacing.TPM)


def profile_section(quick: bool) -> Section | None:
    """Where the concurrency benchmark's worker spends its CPU (py-spy, when installed)."""
    import tempfile
    from pathlib import Path

    from bench.profile import group_shares, py_spy

    if py_spy() is None:
        return None
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        path = Path(tmp) / "worker.txt"
        run = concurrency.run(*((300, 500) if quick else (2000, 2000)), quick=quick, profile=path)
        samples, shares = group_shares(path)
    measured = {row[0]: row[1] for row in run.rows}
    return Section(
        title="2b. Where one worker's CPU goes (py-spy during the concurrency benchmark)",
        command="python -m bench.concurrency --profile FILE  (py-spy record --gil, 200 Hz)",
        columns=["what the worker was doing", "% of samples"],
        rows=[[label, f"{share:.1f}"] for label, share in shares],
        notes=[
            f"{samples:,} samples of the thread holding the GIL (where a Python process spends its CPU); "
            "groups overlap (an indented group is part of the group above it).",
            f"this profiled run: {measured['throughput (jobs/s)']} jobs/s at "
            f"{measured['worker CPU ms / job']} worker CPU ms/job "
            "(py-spy itself slows it).",
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke versions; RESULTS.md untouched")
    parser.add_argument(
        "--only",
        help="comma-separated: overhead,litellm,where,concurrency,profile,personalization,pickup,cost,"
        "storefront_day,scale,tracing,pacing,fairness",
    )
    args = parser.parse_args(argv)
    quiet_driver_logs()
    wanted = set(args.only.split(",")) if args.only else None
    q = args.quick
    plan: list[tuple[str, Any]] = [
        ("overhead", lambda: overhead.run(100 if q else 2000, rounds=1 if q else overhead.ROUNDS, quick=q)),
        ("litellm", lambda: litellm_settings.run(*((100, 2) if q else (1000, 5)), quick=q)),
        ("where", lambda: where.run(*((200, 1) if q else (1500, 2)), quick=q)),
        ("concurrency", lambda: concurrency.run(*((300, 500) if q else (2000, 2000)), quick=q)),
        ("profile", lambda: profile_section(q)),
        ("personalization", lambda: personalization(q)),
        ("pickup", lambda: pickup(q)),
        ("cost", lambda: cost.run(cost.QUICK if q else cost.Day(), quick=q)),
        ("storefront_day", lambda: storefront_day.run(quick=q)),
        ("scale", lambda: scale.run(300 if q else 10_000, 1000, quick=q)),
        ("fairness", lambda: fairness.run(*((300, 500) if q else (3000, 2000)), quick=q)),
        ("tracing", lambda: tracing_cost(q)),
        ("drafts", lambda: drafts_cost(q)),
        ("pacing", lambda: pacing_section(q)),
    ]
    sections: list[Any] = []
    for name, bench in plan:
        if wanted is not None and name not in wanted:
            continue
        started = time.monotonic()
        console.rule(f"[bold]{name}")
        section = bench()
        if section is None:
            console.print(f"{name}: not available yet", highlight=False)
            continue
        section.print()
        console.print(f"({time.monotonic() - started:.0f} s)")
        sections.append(section)
    if not q:
        write_results(sections, partial=wanted is not None)
        console.print(f"wrote {RESULTS}")
    missed = [s.title for s in sections if isinstance(s, Section) and not s.ok]
    if missed:
        console.print("targets not met in: " + "; ".join(missed), highlight=False)


if __name__ == "__main__":
    main()
